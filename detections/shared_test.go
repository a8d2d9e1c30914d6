package detections

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// sigmaDir returns the SigmaHQ material at ../shared/sigma relative to the
// module root, skipping when it is absent.
func sigmaDir(tb testing.TB) string {
	tb.Helper()
	dir := filepath.Join("..", "..", "shared", "sigma")
	if _, err := os.Stat(dir); err != nil {
		tb.Skipf("SigmaHQ material not found at %s (../shared absent): %v", dir, err)
	}
	return dir
}

var (
	allOnce sync.Once
	allRes  *LoadResult
	allErr  error
)

// loadAll loads every SigmaHQ rule once per test binary.
func loadAll(tb testing.TB) *LoadResult {
	dir := sigmaDir(tb)
	allOnce.Do(func() {
		allRes = &LoadResult{}
		for _, sub := range []string{"rules", "rules-emerging-threats", "rules-threat-hunting"} {
			r, err := LoadDir(filepath.Join(dir, sub), Options{})
			if err != nil {
				allErr = err
				return
			}
			allRes.add(r)
		}
	})
	if allErr != nil {
		tb.Fatal(allErr)
	}
	return allRes
}

func TestLoadSigmaHQ(t *testing.T) {
	res := loadAll(t)
	for _, e := range res.Errors {
		t.Errorf("did not load: %v", e)
	}
	t.Logf("%d files, %d rules loaded, %d failed, %d skipped, %d warnings", res.Files, len(res.Rules), len(res.Errors), len(res.Skipped), len(res.Warnings))
	if len(res.Rules) < 3754 {
		t.Errorf("loaded %d rules, want 3754", len(res.Rules))
	}
}

func TestRegressionSigmaHQ(t *testing.T) {
	res := loadAll(t)
	rr, err := RunRegression(filepath.Join(sigmaDir(t), "regression_data"), res.Rules...)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rr.Cases {
		if c.Skipped {
			t.Logf("SKIP %s (%s): %s", c.RuleID, c.Title, c.Reason)
		} else if !c.Pass {
			t.Logf("FAIL %s (%s): %s", c.RuleID, c.Title, c.Reason)
		}
	}
	total := rr.Passed + rr.Failed
	t.Logf("regression: %d passed, %d failed, %d skipped", rr.Passed, rr.Failed, rr.Skipped)
	if total == 0 || float64(rr.Passed) < 0.98*float64(total) {
		t.Errorf("regression pass rate %d/%d below 98%%", rr.Passed, total)
	}
}
