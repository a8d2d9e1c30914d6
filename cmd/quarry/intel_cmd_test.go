package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An indicator added after the events were imported is found by
// 'intel hunt', shown by ioc_hits; hunting again adds nothing; removing
// the source empties intel_indicators.
func TestIntelAddHuntQuery(t *testing.T) {
	dir := t.TempDir()
	importChain(t, dir)
	list := filepath.Join(dir, "c2.txt")
	if err := os.WriteFile(list, []byte("# c2\nhttp://198.51.100.7/a.txt\n198.51.100.0/24\nnot-an-indicator\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errs, code := quarry(t, dir, "", "intel", "add", list, "--source", "c2", "--confidence", "75", "--ttl", "30d")
	if code != 0 || !strings.Contains(out, "c2: 2 indicators") || !strings.Contains(errs, "c2.txt:4: skipped (invalid)") {
		t.Fatalf("add: exit %d\n%s%s", code, out, errs)
	}
	out, errs, code = quarry(t, dir, "", "intel", "hunt")
	// cmd.exe's certutil command line, certutil's own, and a PowerShell
	// download from the same address.
	if code != 0 || !strings.Contains(out, "6 events matched against 2 indicators: 5 hits, 5 new") {
		t.Fatalf("hunt: exit %d\n%s%s", code, out, errs)
	}
	out, _, _ = quarry(t, dir, "", "intel", "hunt")
	if !strings.Contains(out, "5 hits, 0 new") {
		t.Errorf("second hunt: %s", out)
	}
	out, errs, code = quarry(t, dir, "", "query", "--format", "csv",
		"SELECT type, indicator, matched_value, matched_field, pid, confidence FROM ioc_hits ORDER BY type")
	if code != 0 {
		t.Fatalf("query: exit %d: %s", code, errs)
	}
	for _, want := range []string{"cidr,198.51.100.0/24,198.51.100.7,cmdline,5100,75", "url,http://198.51.100.7/a.txt,http://198.51.100.7/a.txt,cmdline,5100,75"} {
		if !strings.Contains(out, want) {
			t.Errorf("ioc_hits lacks %q:\n%s", want, out)
		}
	}
	// The hits are IoC hits of ioa_hits (kind ioc) too: incidents and the
	// process tree show them with their own badge.
	out, _, _ = quarry(t, dir, "", "query", "--format", "csv",
		"SELECT count(DISTINCT hit_id), min(rule_title), min(rule_source) FROM ioa_hits WHERE kind = 'ioc'")
	if !strings.Contains(out, "5,IOC 198.51.100.0/24,intel") {
		t.Errorf("ioa_hits of kind ioc: %s", out)
	}
	out, _, _ = quarry(t, dir, "", "incidents", "--format", "json")
	if !strings.Contains(out, `"rule_title":"IOC 198.51.100.0/24"`) || !strings.Contains(out, `"kind":"ioc"`) {
		t.Errorf("incidents lack the IoC hits:\n%s", out)
	}
	out, _, _ = quarry(t, dir, "", "tree", "5100", "--color", "never")
	if !strings.Contains(out, "[IOC 198.51.100.0/24]") || !strings.Contains(out, "[IOC http://198.51.100.7/a.txt]") {
		t.Errorf("tree lacks the IOC badges:\n%s", out)
	}
	if _, errs, code := quarry(t, dir, "", "intel", "add", list, "--confidence", "300"); code != 2 {
		t.Errorf("--confidence 300: exit %d, %s", code, errs)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"type": "bundle", "objects": [`), 0o600)
	if _, errs, code := quarry(t, dir, "", "intel", "add", bad); code != 1 || !strings.Contains(errs, "bad.json") {
		t.Errorf("malformed bundle: exit %d, %s", code, errs)
	}
	if out, errs, code := quarry(t, dir, "", "intel", "remove", "c2"); code != 0 || !strings.Contains(out, "2 indicators removed") {
		t.Errorf("remove: exit %d\n%s%s", code, out, errs)
	}
	out, _, _ = quarry(t, dir, "", "query", "--format", "csv", "SELECT count(*) FROM intel_indicators")
	if !strings.Contains(out, "0") {
		t.Errorf("after remove: %s", out)
	}
}

// Indicators loaded before an import are matched as the events are stored:
// no hunt needed.
func TestIntelMatchedOnImport(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "c2.txt")
	if err := os.WriteFile(list, []byte("198.51.100.0/24\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errs, code := quarry(t, dir, "", "intel", "add", list, "--source", "c2"); code != 0 {
		t.Fatalf("add: exit %d\n%s%s", code, out, errs)
	}
	out, errs, code := quarry(t, dir, "", "import", chainRecording)
	if code != 0 || !strings.Contains(out+errs, "indicator hit(s)") {
		t.Fatalf("import: exit %d\n%s%s", code, out, errs)
	}
	out, _, _ = quarry(t, dir, "", "query", "--format", "csv", "SELECT count(*) FROM ioc_hits WHERE indicator = '198.51.100.0/24'")
	if strings.TrimSpace(strings.Split(out, "\n")[1]) == "0" {
		t.Fatalf("no ioc_hits after the import: %s", out)
	}
	// Live, the hits took the IoA hits' path too (kind ioc).
	out, _, _ = quarry(t, dir, "", "query", "--format", "csv", "SELECT count(*) FROM ioa_hits WHERE kind = 'ioc' AND rule_source = 'intel'")
	if strings.TrimSpace(strings.Split(out, "\n")[1]) == "0" {
		t.Fatalf("no IoC hits in ioa_hits after the import: %s", out)
	}
	if out, _, _ := quarry(t, dir, "", "intel", "hunt"); !strings.Contains(out, ", 0 new") {
		t.Errorf("a hunt after the import finds nothing new: %s", out)
	}
}
