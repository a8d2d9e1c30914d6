package attack

import (
	"os"
	"path/filepath"
	"testing"
)

// sharedAttackDir returns ../shared/attack beside the module root, or skips
// the test when it is absent.
func sharedAttackDir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Skip("skipping: module root (go.mod) not found")
		}
		dir = parent
	}
	shared := filepath.Join(dir, "..", "shared", "attack")
	if _, err := os.Stat(filepath.Join(shared, "enterprise-attack.json")); err != nil {
		tb.Skipf("skipping: shared ATT&CK data absent (%s): %v", shared, err)
	}
	return shared
}

func mustEmbedded(tb testing.TB) *KB {
	tb.Helper()
	kb, err := Embedded()
	if err != nil {
		tb.Fatalf("Embedded: %v", err)
	}
	return kb
}

func parseFile(tb testing.TB, path string) *KB {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	kb, err := ParseSTIX(f)
	if err != nil {
		tb.Fatalf("ParseSTIX(%s): %v", path, err)
	}
	return kb
}
