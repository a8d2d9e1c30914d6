//go:build linux

package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Run is a prepared run: its cgroup made (so that collectors can filter
// by CgroupID before the sample starts) and its throwaway directories.
type Run struct {
	ID      string
	opts    Options
	sample  string
	scratch string // host directory holding the throwaway /tmp and home
	cg      *cgroup
}

// Prepare checks bubblewrap, makes the run's cgroup and throwaway
// directories and copies the sample in. Close removes them.
func Prepare(runID, sample string, opts Options) (*Run, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 60 * time.Second
	}
	switch opts.Network {
	case "":
		opts.Network = NetworkNone
	case NetworkNone, NetworkSink:
	default:
		return nil, fmt.Errorf("sandbox: unknown network %q (want none or sink)", opts.Network)
	}
	opts.Limits.defaults()
	if opts.Bwrap == "" {
		p, err := exec.LookPath("bwrap")
		if err != nil {
			return nil, fmt.Errorf("sandbox: bubblewrap (bwrap) not found: install the bubblewrap package: %w", err)
		}
		opts.Bwrap = p
	}
	if opts.Network == NetworkSink {
		if _, err := exec.LookPath("ip"); err != nil {
			return nil, fmt.Errorf("sandbox: --network sink needs the ip tool (iproute2): %w", err)
		}
	}
	st, err := os.Stat(sample)
	if err != nil {
		return nil, fmt.Errorf("sandbox: sample: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("sandbox: sample %s is not a regular file", sample)
	}
	scratch, err := os.MkdirTemp("", "quarry-sandbox-")
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	r := &Run{ID: runID, opts: opts, sample: sample, scratch: scratch}
	// bwrap, running as nobody, must reach the directories it binds.
	if err := os.Chmod(scratch, 0o711); err != nil {
		r.Close()
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	for _, d := range []string{"tmp", "home", "vartmp"} {
		if err := os.Mkdir(filepath.Join(scratch, d), 0o777); err != nil {
			r.Close()
			return nil, fmt.Errorf("sandbox: %w", err)
		}
		os.Chmod(filepath.Join(scratch, d), 0o777|fs.ModeSticky)
	}
	// The sample owns its copy, as a downloaded file would be owned by
	// the user who fetched it (it may delete or rewrite itself).
	copied := filepath.Join(scratch, "tmp", "sample")
	if err := copyFile(sample, copied, 0o755); err != nil {
		r.Close()
		return nil, fmt.Errorf("sandbox: copy sample: %w", err)
	}
	if err := os.Chown(copied, HostUID, HostUID); err != nil {
		r.Close()
		return nil, fmt.Errorf("sandbox: copy sample: %w", err)
	}
	if r.cg, err = newCgroup(runID, opts.Limits); err != nil {
		r.Close()
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	return r, nil
}

// CgroupID is the id of the run's cgroup v2: Event.CgroupID of every
// process of the run.
func (r *Run) CgroupID() uint64 { return r.cg.id }

// Close kills what is left of the run and removes its cgroup and
// throwaway directories.
func (r *Run) Close() error {
	var errs []error
	if r.cg != nil {
		errs = append(errs, r.cg.remove())
	}
	errs = append(errs, os.RemoveAll(r.scratch))
	return errors.Join(errs...)
}

// args is bwrap's command line.
func (r *Run) args(seccompFD int) []string {
	a := []string{
		"--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
		"--uid", fmt.Sprint(SandboxUID), "--gid", fmt.Sprint(SandboxUID),
		"--hostname", "sandbox",
		"--ro-bind", "/", "/",
		"--dev", "/dev", "--proc", "/proc",
		"--tmpfs", "/run",
		"--bind", filepath.Join(r.scratch, "tmp"), "/tmp",
		"--bind", filepath.Join(r.scratch, "vartmp"), "/var/tmp",
	}
	// The home is throwaway; /home and /root of the host are hidden.
	a = append(a, "--tmpfs", "/home", "--bind", filepath.Join(r.scratch, "home"), Home)
	if _, err := os.Stat("/root"); err == nil {
		a = append(a, "--tmpfs", "/root")
	}
	if r.opts.Network == NetworkNone {
		a = append(a, "--unshare-net")
	}
	a = append(a, "--die-with-parent", "--new-session", "--cap-drop", "ALL",
		"--clearenv", "--setenv", "HOME", Home, "--setenv", "USER", "sandbox",
		"--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
		"--chdir", Home,
		"--seccomp", fmt.Sprint(seccompFD),
		"--", SamplePath)
	return append(a, r.opts.Args...)
}

// Start runs the sample until it exits or the timeout (or ctx) ends it,
// then kills every process left in its cgroup.
func (r *Run) Start(ctx context.Context) (Result, error) {
	res := Result{ExitCode: -1, Limits: r.cg.applied, NotLimited: r.cg.missing}
	filter, err := seccompFilter()
	if err != nil {
		return res, fmt.Errorf("sandbox: %w", err)
	}
	fr, fw, err := os.Pipe()
	if err != nil {
		return res, fmt.Errorf("sandbox: %w", err)
	}
	defer fr.Close()
	go func() {
		fw.Write(filter)
		fw.Close()
	}()
	cgfd, err := unix.Open(r.cg.dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return res, fmt.Errorf("sandbox: open cgroup: %w", err)
	}
	defer unix.Close(cgfd)
	var stderr tailBuffer
	cmd := exec.Command(r.opts.Bwrap, r.args(3)...)
	cmd.ExtraFiles = []*os.File{fr}
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	// bwrap runs as nobody: inside, the sample is SandboxUID mapped to
	// nobody outside, so the host's files it can read are those anyone
	// may read (mapped to root, it would own every root-owned file).
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: cgfd, Setpgid: true,
		Credential: &syscall.Credential{Uid: HostUID, Gid: HostUID}}
	cmd.Env = []string{}

	// The sandbox is started from a locked thread that lives until bwrap
	// exits (bwrap's --die-with-parent watches that thread) and is then
	// discarded: the thread joins the cgroup v1 directories (limits) and,
	// with the sink, the sink's network namespace, and bwrap inherits both.
	type started struct {
		sink *sink
		err  error
	}
	ch := make(chan started, 1)
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		leave, err := r.cg.joinThread()
		if err != nil {
			ch <- started{err: err}
			return
		}
		var sk *sink
		if r.opts.Network == NetworkSink {
			if sk, err = startSink(); err != nil {
				leave()
				ch <- started{err: err}
				return
			}
		}
		res.Started = time.Now().UTC()
		if err := cmd.Start(); err != nil {
			if sk != nil {
				sk.close()
			}
			leave()
			ch <- started{err: fmt.Errorf("sandbox: start bwrap: %w", err)}
			return
		}
		leave()
		ch <- started{sink: sk}
		done <- cmd.Wait()
	}()
	s := <-ch
	if s.err != nil {
		return res, s.err
	}
	timer := time.NewTimer(r.opts.Timeout)
	defer timer.Stop()
	var werr error
	select {
	case werr = <-done:
	case <-timer.C:
		res.TimedOut = true
	case <-ctx.Done():
	}
	// Whatever the sample left running (daemons, the timed-out tree) ends
	// with the cgroup.
	kerr := r.cg.kill()
	if res.TimedOut || ctx.Err() != nil {
		werr = <-done
	}
	res.Duration = time.Since(res.Started)
	if s.sink != nil {
		res.Sink, res.SinkDropped = s.sink.close()
	}
	if kerr != nil {
		return res, fmt.Errorf("sandbox: %w", kerr)
	}
	var ee *exec.ExitError
	switch {
	case werr == nil:
		res.ExitCode = 0
	case errors.As(werr, &ee):
		res.ExitCode = ee.ExitCode()
	default:
		return res, fmt.Errorf("sandbox: %w", werr)
	}
	res.Stderr = stderr.String()
	res.Files = r.files()
	return res, ctx.Err()
}

// files lists and hashes what the sample left in its writable directories.
func (r *Run) files() []File {
	var out []File
	for _, d := range [][2]string{{"tmp", "/tmp"}, {"vartmp", "/var/tmp"}, {"home", Home}} {
		base := filepath.Join(r.scratch, d[0])
		filepath.WalkDir(base, func(p string, e fs.DirEntry, err error) error {
			if err != nil || !e.Type().IsRegular() {
				return nil
			}
			rel, _ := filepath.Rel(base, p)
			inside := filepath.Join(d[1], rel)
			if inside == SamplePath {
				return nil
			}
			f := File{Path: inside}
			if sum, n, err := hashFile(p); err == nil {
				f.SHA256, f.Size = sum, n
			}
			out = append(out, f)
			return nil
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

func hashFile(p string) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil)), n, err
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// tailBuffer keeps the last 4 KiB written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 4096 {
		t.b = t.b[len(t.b)-4096:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return strings.TrimSpace(string(t.b)) }
