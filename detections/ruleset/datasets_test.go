package ruleset_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/detections/ruleset"
	"github.com/quarry-sec/quarry/telemetry/importers"
)

// shared returns ../shared beside the module, or skips.
func shared(t *testing.T, sub string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", sub)
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("skipping: %s is absent (the shared material beside the checkout)", dir)
	}
	return dir
}

// TestDatasetsKnownTechniques: on each recorded attack, the builtin pack
// together with every SigmaHQ rule reports the recording's known techniques
// (datasets/README.md).
func TestDatasetsKnownTechniques(t *testing.T) {
	datasets := shared(t, "datasets")
	sigma := shared(t, "sigma")
	res, err := ruleset.Load(ruleset.Config{Builtin: true, Sigma: []string{
		filepath.Join(sigma, "rules"), filepath.Join(sigma, "rules-emerging-threats"), filepath.Join(sigma, "rules-threat-hunting")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) > 0 {
		t.Fatalf("%d rules did not load, first: %v", len(res.Errors), res.Errors[0])
	}
	engine := detections.NewEngine(res.Rules)
	known := map[string][]string{
		"sd-T1197-bitsadmin-download":            {"T1197", "T1105"},
		"sd-T1003.001-comsvcs-lsass-dump":        {"T1003.001", "T1218.011"},
		"sd-T1003.002-esentutl-sam-copy":         {"T1003.002"},
		"sd-T1003.004-psexec-lsa-secrets":        {"T1003.004", "T1569.002"},
		"sd-T1218.005-mshta-vbscript-powershell": {"T1218.005", "T1059.001"},
		"sd-T1053.005-remote-schtask-create":     {"T1053.005"},
		"sd-linux-T1018-arp-cache":               {"T1018"},
		"sd-linux-T1027.001-dd-binary-padding":   {"T1027.001"},
	}
	for set, want := range known {
		files, _ := filepath.Glob(filepath.Join(datasets, set, "*"))
		if len(files) == 0 {
			t.Errorf("%s: no files", set)
			continue
		}
		got := map[string]bool{}
		for _, f := range files {
			r, _, err := importers.Open(f)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			for {
				ev, err := r.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					continue
				}
				engine.Match(&ev, func(h detections.Hit) {
					for _, tq := range h.Techniques {
						got[tq.ID] = true
						got[tq.ResolvedID] = true
					}
				})
			}
			r.Close()
		}
		for _, w := range want {
			if !got[w] {
				t.Errorf("%s: technique %s not reported (got %v)", set, w, got)
			}
		}
	}
}
