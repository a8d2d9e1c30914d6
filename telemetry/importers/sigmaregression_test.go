package importers

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSigmaRegressionEVTXMatchesJSON reads every SigmaHQ regression
// recording in ../shared/sigma twice, EVTX and JSON, and wants the same
// events and fields from both.
func TestSigmaRegressionEVTXMatchesJSON(t *testing.T) {
	root := filepath.Join(filepath.Dir(datasetsDir(t)), "sigma", "regression_data")
	if _, err := os.Stat(root); err != nil {
		t.Skipf("SigmaHQ regression data absent (%s): skipping", root)
	}
	n := 0
	filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || !strings.HasSuffix(path, ".evtx") {
			return nil
		}
		jsonPath := strings.TrimSuffix(path, ".evtx") + ".json"
		if _, err := os.Stat(jsonPath); err != nil {
			return nil
		}
		n++
		xevs, xerrs, _ := openAll(t, path)
		jevs, jerrs, _ := openAll(t, jsonPath)
		if len(xerrs)+len(jerrs) != 0 || len(xevs) != len(jevs) || len(xevs) == 0 {
			t.Errorf("%s: evtx %d events %v, json %d events %v", path, len(xevs), xerrs, len(jevs), jerrs)
			return nil
		}
		for i := range xevs {
			x, j := xevs[i], jevs[i]
			if x.Kind != j.Kind || x.Category != j.Category || x.PID != j.PID || x.Path != j.Path || !x.Time.Equal(j.Time) || x.Host != j.Host {
				t.Errorf("%s event %d: evtx %+v\njson %+v", path, i, x, j)
			}
			for k, v := range j.Fields.All() {
				// A few recordings' JSON differs from their EVTX in a command
				// line's case or trailing space: the data's doing, not ours.
				if strings.HasSuffix(k, "CommandLine") && strings.EqualFold(strings.TrimSpace(x.Fields.Value(k)), strings.TrimSpace(v)) {
					continue
				}
				if k == "TimeCreated_SystemTime" { // JSON tools print 6 or 9 digits
					xt, _ := parseWinTime(x.Fields.Value(k))
					jt, _ := parseWinTime(v)
					if d := xt.Sub(jt); d > -time.Microsecond && d < time.Microsecond {
						continue
					}
				}
				if x.Fields.Value(k) != v {
					t.Errorf("%s event %d Fields[%q]: evtx %q, json %q", path, i, k, x.Fields.Value(k), v)
				}
			}
		}
		return nil
	})
	if n == 0 {
		t.Skip("no EVTX+JSON pairs found")
	}
	t.Logf("%d EVTX/JSON pairs agree", n)
}
