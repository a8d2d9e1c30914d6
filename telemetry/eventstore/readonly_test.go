package eventstore

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quarry-sec/quarry/internal/unprivileged"
	"github.com/quarry-sec/quarry/telemetry"
)

// TestOpenReadOnly: a store opened read-only reads what was stored and
// refuses writes.
func TestOpenReadOnly(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(context.Background(), []telemetry.Event{sampleEvent(1), sampleEvent(2)}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	ro, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if got := collect(t, ro, Filter{}); len(got) != 2 {
		t.Fatalf("read %d events, want 2", len(got))
	}
	if _, err := ro.Append(context.Background(), []telemetry.Event{sampleEvent(3)}); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Append on a read-only store: %v, want ErrReadOnly", err)
	}
	if _, err := OpenReadOnly(filepath.Join(dir, "none.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("read-only open of a missing store: %v, want not exist", err)
	}
}

// TestOpenUnwritable: Open in a directory the user may not write says
// "permission denied" and the path, not SQLite's "unable to open database
// file (14)"; OpenReadOnly reads it. As root, checked as nobody.
func TestOpenUnwritable(t *testing.T) {
	dir := os.Getenv("QUARRY_TEST_DIR")
	if !unprivileged.Child() {
		dir = unprivileged.Open(t, t.TempDir())
		s, err := Open(filepath.Join(dir, FileName))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Append(context.Background(), []telemetry.Event{sampleEvent(1)}); err != nil {
			t.Fatal(err)
		}
		s.Close()
		os.Chmod(filepath.Join(dir, FileName), 0o444)
		os.Chmod(dir, 0o555)
		t.Cleanup(func() { os.Chmod(dir, 0o755) })
		if unprivileged.NeedRerun() {
			unprivileged.Rerun(t, "QUARRY_TEST_DIR="+dir)
			return
		}
	}
	path := filepath.Join(dir, FileName)
	_, err := Open(path)
	if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "permission denied") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("Open of an unwritable store: %v, want permission denied naming %s", err, dir)
	}
	ro, err := OpenReadOnly(path)
	if err != nil {
		t.Fatalf("OpenReadOnly: %v", err)
	}
	defer ro.Close()
	if got := collect(t, ro, Filter{}); len(got) != 1 {
		t.Fatalf("read %d events, want 1", len(got))
	}
}
