package importers

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/quarry-sec/quarry/telemetry"
)

// readAll drains a reader, returning the events and the record errors.
func readAll(t testing.TB, r telemetry.Reader) ([]telemetry.Event, []*telemetry.RecordError) {
	t.Helper()
	var evs []telemetry.Event
	var errs []*telemetry.RecordError
	for i := 0; ; i++ {
		e, err := r.Next()
		if errors.Is(err, io.EOF) {
			return evs, errs
		}
		if err != nil {
			var re *telemetry.RecordError
			if !errors.As(err, &re) {
				t.Fatalf("Next: %v is not a *telemetry.RecordError", err)
			}
			errs = append(errs, re)
			if len(errs) > 1000 {
				t.Fatalf("more than 1000 record errors")
			}
			continue
		}
		evs = append(evs, e)
	}
}

// openAll opens and reads a whole file.
func openAll(t testing.TB, path string, opts ...Option) ([]telemetry.Event, []*telemetry.RecordError, Format) {
	t.Helper()
	r, f, err := Open(path, opts...)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	defer r.Close()
	evs, errs := readAll(t, r)
	return evs, errs, f
}

// writeTemp writes data to a file in a fresh temporary directory.
func writeTemp(t testing.TB, name, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// datasetsDir is ../shared/datasets beside the module root; tests needing
// it skip when it is absent.
func datasetsDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("module root not found; skipping the ../shared/datasets tests")
		}
		dir = parent
	}
	d := filepath.Join(filepath.Dir(dir), "shared", "datasets")
	if _, err := os.Stat(d); err != nil {
		t.Skipf("recorded datasets absent (%s): skipping; CI provides ../shared beside the module", d)
	}
	return d
}

// eq reports a mismatch of one field.
func eq[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
