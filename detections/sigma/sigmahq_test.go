package sigma

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sharedDir returns ../shared relative to the module root, skipping the
// test when it is absent.
func sharedDir(t testing.TB) string {
	dir := filepath.Join("..", "..", "..", "shared", "sigma")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("SigmaHQ rules not found at %s (../shared is absent): %v", dir, err)
	}
	return dir
}

func TestParseSigmaHQ(t *testing.T) {
	dir := sharedDir(t)
	var rules, files int
	for _, sub := range []string{"rules", "rules-emerging-threats", "rules-threat-hunting"} {
		_ = filepath.WalkDir(filepath.Join(dir, sub), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yml") {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			files++
			res := Parse(p, data)
			rules += len(res.Rules)
			for _, e := range res.Errors {
				t.Errorf("%v", e)
			}
			return nil
		})
	}
	t.Logf("%d files, %d rules parsed", files, rules)
}
