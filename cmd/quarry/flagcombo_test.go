package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A flag that only acts with another is a usage error without it, not
// silently ignored: 'scan --since 24h FILE' would scan all of FILE and
// 'incidents --window 1h' list the incidents of the stored window.
func TestFlagsThatNeedAnother(t *testing.T) {
	dir := t.TempDir()
	rec := filepath.Join(dir, "rec.json")
	if err := os.WriteFile(rec, []byte(`{"EventID":1,"Hostname":"h","UtcTime":"2026-01-01 00:00:00.000","Image":"C:\\a.exe","ProcessId":"1"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"scan", "--since", "24h", rec},
		{"scan", "--until", "2026-01-01", rec},
		{"scan", "--store", "--host", "h"},
		{"incidents", "--window", "1h"},
	} {
		_, errs, code := quarry(t, dir, "", args...)
		if code != 2 || !strings.Contains(errs, "--") {
			t.Errorf("%v: exit %d, want 2 (usage): %s", args, code, errs)
		}
	}
	if _, errs, code := quarry(t, dir, "", "incidents", "--rebuild", "--window", "1h"); code != 0 {
		t.Errorf("incidents --rebuild --window 1h: exit %d: %s", code, errs)
	}
}

// rules test over a folder holding no regression case (a wrong path, say
// sigma/ for sigma/regression_data) fails instead of passing with
// "0 passed, 0 failed".
func TestRulesTestNoCases(t *testing.T) {
	dir := t.TempDir()
	out, errs, code := quarry(t, dir, "", "rules", "test", "--regression", t.TempDir())
	if code != 1 || !strings.Contains(errs, "no regression case") {
		t.Fatalf("exit %d, want 1\n%s%s", code, out, errs)
	}
}

// An unknown value of collect's --source/--activity or detonate's --network
// is a usage error (exit 2), as any other flag's, found before the rules
// load or anything runs.
func TestUnknownFlagValuesAreUsageErrors(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"collect", "--source", "bogus"},
		{"collect", "--activity", "bogus"},
		{"detonate", "--network", "bogus", "/bin/true"},
	} {
		_, errs, code := quarry(t, dir, "", args...)
		if code != 2 || !strings.Contains(errs, `"bogus"`) || strings.Contains(errs, "live detection on") {
			t.Errorf("%v: exit %d, want 2 (usage)\n%s", args, code, errs)
		}
	}
}

// --hits-per-process 0 is refused: the pipeline took 0 for its default
// (100 hits), the opposite of what it asks for.
func TestHitsPerProcessZero(t *testing.T) {
	dir := t.TempDir()
	for _, cmd := range []string{"import", "collect"} {
		_, errs, code := quarry(t, dir, "", cmd, "--hits-per-process", "0", "x.json")
		if code != 2 || !strings.Contains(errs, "--hits-per-process") {
			t.Errorf("%s: exit %d, want 2 (usage)\n%s", cmd, code, errs)
		}
	}
}
