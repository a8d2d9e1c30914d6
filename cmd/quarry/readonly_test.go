package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quarry-sec/quarry/internal/unprivileged"
)

// TestReadOnlyDataDir: a user who may read the data directory but not write
// it queries the store (opened read-only) and ATT&CK; a write says
// "permission denied" and the path. A store the user may not read at all
// leaves the ATT&CK tables answering, the event tables reporting why.
// As root (CI), the checks run as nobody.
func TestReadOnlyDataDir(t *testing.T) {
	var readable, unreadable, closed string
	if unprivileged.Child() {
		readable, unreadable, closed = os.Getenv("QUARRY_TEST_RO"), os.Getenv("QUARRY_TEST_NOREAD"), os.Getenv("QUARRY_TEST_CLOSED")
	} else {
		readable = unprivileged.Open(t, t.TempDir())
		unreadable = unprivileged.Open(t, t.TempDir())
		// closed: a data directory the user may not even enter.
		closed = filepath.Join(unprivileged.Open(t, t.TempDir()), "data")
		if err := os.Mkdir(closed, 0o700); err != nil {
			t.Fatal(err)
		}
		for _, dir := range []string{readable, unreadable} {
			if _, errs, code := quarry(t, dir, "", "import", "--no-detect", "--host", "h1", "testdata/mshta-chain.json"); code != 0 {
				t.Fatalf("import: exit %d\n%s", code, errs)
			}
		}
		// readable: r-x dir, r-- store; unreadable: --x dir, --- store
		for dir, modes := range map[string][2]os.FileMode{readable: {0o555, 0o444}, unreadable: {0o711, 0o600}} {
			files, _ := filepath.Glob(filepath.Join(dir, "*"))
			for _, f := range files {
				if err := os.Chmod(f, modes[1]); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chmod(dir, modes[0]); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(dir, 0o755) })
		}
		if unprivileged.NeedRerun() {
			unprivileged.Rerun(t, "QUARRY_TEST_RO="+readable, "QUARRY_TEST_NOREAD="+unreadable, "QUARRY_TEST_CLOSED="+closed)
			return
		}
	}
	store := filepath.Join(readable, "events.db")

	out, errs, code := quarry(t, readable, "", "query", "--format", "csv", "SELECT count(*) AS n FROM process_events")
	if code != 0 || out != "n\n2\n" {
		t.Errorf("query of a read-only store: exit %d\n%s\n%s", code, out, errs)
	}
	out, errs, code = quarry(t, readable, "", "query", "--format", "csv", "SELECT count(*) AS n FROM attack_tactics WHERE attack_version = '18.1'")
	if code != 0 || out != "n\n14\n" {
		t.Errorf("ATT&CK query beside a read-only store: exit %d\n%s\n%s", code, out, errs)
	}
	if _, errs, code = quarry(t, readable, "", "incidents"); code != 0 {
		t.Errorf("incidents on a read-only store: exit %d\n%s", code, errs)
	}
	_, errs, code = quarry(t, readable, "", "import", "--no-detect", "testdata/mshta-chain.json")
	if code == 0 || !strings.Contains(errs, "permission denied") || !strings.Contains(errs, readable) {
		t.Errorf("import into a read-only data dir: exit %d, want the path and permission denied\n%s", code, errs)
	}
	if strings.Contains(errs, "(14)") {
		t.Errorf("SQLite's code leaked instead of the reason: %s", errs)
	}
	if _, err := os.Stat(store + "-wal"); err == nil {
		t.Errorf("a read-only open left %s-wal", store)
	}

	out, errs, code = quarry(t, unreadable, "", "query", "--format", "csv", "SELECT count(*) AS n FROM attack_techniques WHERE id = 'T1059'")
	if code != 0 || out != "n\n1\n" {
		t.Errorf("ATT&CK query beside an unreadable store: exit %d\n%s\n%s", code, out, errs)
	}
	_, errs, code = quarry(t, unreadable, "", "query", "SELECT count(*) FROM process_events")
	if code == 0 || !strings.Contains(errs, "permission denied") || !strings.Contains(errs, filepath.Join(unreadable, "events.db")) {
		t.Errorf("process_events over an unreadable store: exit %d, want the path and permission denied\n%s", code, errs)
	}
	// ATT&CK answers from the compiled-in data even when the data directory
	// cannot be entered.
	out, errs, code = quarry(t, closed, "", "query", "--format", "csv", "SELECT count(*) AS n FROM attack_techniques WHERE id = 'T1059'")
	if code != 0 || out != "n\n1\n" {
		t.Errorf("ATT&CK query with a data directory the user cannot enter: exit %d\n%s\n%s", code, out, errs)
	}
}
