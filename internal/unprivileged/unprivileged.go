// Package unprivileged runs a test again as an unprivileged user (nobody),
// for tests of what a user who may not write a directory sees. Tests run as
// root in CI, and root writes anywhere, so such a test re-runs itself: the
// parent (root) prepares files, Rerun executes the same test binary as
// nobody with only that test selected, and the child (Child reports true)
// does the checks. Where dropping privileges is impossible the test skips
// with the reason; run as an ordinary user, the test runs directly.
package unprivileged

import (
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const envChild = "QUARRY_TEST_UNPRIVILEGED"

// Child reports whether this process is the unprivileged re-run of a test.
func Child() bool { return os.Getenv(envChild) == "1" }

// NeedRerun reports whether the test must re-run as another user: it runs
// as root and is not already the re-run.
func NeedRerun() bool { return os.Geteuid() == 0 && !Child() }

// Rerun runs t's test again as nobody, in a copy of the test binary any
// user may execute, with env added to its environment, and fails t with the
// child's output when the child fails. It skips t when it cannot drop
// privileges. Paths the child uses must be readable by nobody (see Open).
func Rerun(t *testing.T, env ...string) {
	t.Helper()
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("skipping: no user nobody to run as: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	self, err := os.Executable()
	if err != nil {
		t.Skipf("skipping: cannot find the test binary: %v", err)
	}
	dir := Open(t, t.TempDir())
	bin := filepath.Join(dir, filepath.Base(self))
	if err := copyFile(self, bin); err != nil {
		t.Skipf("skipping: cannot copy the test binary for nobody: %v", err)
	}
	name := t.Name()
	if i := strings.IndexByte(name, '/'); i >= 0 {
		name = name[:i]
	}
	cmd := exec.Command(bin, "-test.run=^"+name+"$", "-test.v")
	cmd.Env = append(append(os.Environ(), envChild+"=1", "HOME="+dir), env...)
	attr, err := asUser(uid, gid)
	if err != nil {
		t.Skipf("skipping: %v", err)
	}
	cmd.SysProcAttr = attr
	out, err := cmd.CombinedOutput()
	if err != nil {
		if strings.Contains(err.Error(), "operation not permitted") {
			t.Skipf("skipping: cannot run as nobody: %v", err)
		}
		t.Fatalf("as nobody (uid %d): %v\n%s", uid, err, out)
	}
	if strings.Contains(string(out), "--- SKIP") {
		t.Skipf("the run as nobody skipped:\n%s", out)
	}
	t.Logf("as nobody (uid %d):\n%s", uid, out)
}

// Open makes dir and its parents up to / searchable by every user, so that
// an unprivileged re-run can reach it, and returns dir.
func Open(t *testing.T, dir string) string {
	t.Helper()
	for p := dir; p != filepath.Dir(p); p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o005 != 0o005 {
			if err := os.Chmod(p, fi.Mode().Perm()|0o005); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
