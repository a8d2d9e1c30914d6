package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// scanRule is a custom rule on the bitsadmin excerpt, tagged as given.
func scanRule(id, title string, tags ...string) string {
	var b strings.Builder
	b.WriteString("title: " + title + "\nid: " + id + "\nstatus: test\nauthor: Test Analyst\ntags:\n")
	for _, t := range tags {
		b.WriteString("    - " + t + "\n")
	}
	b.WriteString(`logsource:
    category: process_creation
    product: windows
detection:
    selection:
        Image|endswith: '\bitsadmin.exe'
        CommandLine|contains: '/transfer'
    condition: selection
level: high
`)
	return b.String()
}

// TestScanOneAttackVersion: rules written against two ATT&CK versions
// (defense-evasion/T1562.001 and v19's defense-impairment/T1685) scan into
// one version's tactics, v18.1 by default and v19 with --attack 19; a rule
// naming no technique gives 'untagged' hits, counted apart in the summary.
func TestScanOneAttackVersion(t *testing.T) {
	rules := t.TempDir()
	for name, body := range map[string]string{
		"v18.yml":  scanRule("7d8c0b5e-1111-4c1a-9a55-000000000001", "Tamper v18", "attack.defense-evasion", "attack.t1562.001"),
		"v19.yml":  scanRule("7d8c0b5e-1111-4c1a-9a55-000000000002", "Tamper v19", "attack.defense-impairment", "attack.t1685"),
		"none.yml": scanRule("7d8c0b5e-1111-4c1a-9a55-000000000003", "No technique", "attack.stealth"),
	} {
		if err := os.WriteFile(filepath.Join(rules, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	src := "../../telemetry/importers/testdata/security-datasets/bitsadmin-excerpt.json"
	scan := func(args ...string) (tactics map[string]bool, byTitle map[string]map[string]any, summary string) {
		t.Helper()
		out, errs, code := quarry(t, t.TempDir(), "", append([]string{"scan", "--format", "json", "--no-builtin", "--rules", rules}, append(args, src)...)...)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		tactics, byTitle = map[string]bool{}, map[string]map[string]any{}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var h map[string]any
			if err := json.Unmarshal([]byte(line), &h); err != nil {
				t.Fatalf("not a JSON line: %q", line)
			}
			byTitle[h["rule_title"].(string)] = h
			for _, s := range strings.Split(h["tactic"].(string), ",") {
				tactics[s] = true
			}
		}
		return tactics, byTitle, errs
	}
	tactics, hits, summary := scan()
	if len(tactics) != 1 || !tactics["defense-evasion"] {
		t.Errorf("18.1 tactics: %v", tactics)
	}
	if hits["Tamper v19"]["technique_id"] != "T1562.001" || hits["No technique"]["technique_id"] != "untagged" {
		t.Errorf("18.1 techniques: %v / %v", hits["Tamper v19"]["technique_id"], hits["No technique"]["technique_id"])
	}
	if !strings.Contains(summary, "by tactic (ATT&CK 18.1): defense-evasion ") ||
		!strings.Contains(summary, "untagged (rules naming no ATT&CK technique): ") {
		t.Errorf("18.1 summary:\n%s", summary)
	}
	tactics, hits, summary = scan("--attack", "19")
	if tactics["defense-evasion"] || !tactics["defense-impairment"] || !tactics["stealth"] {
		t.Errorf("19 tactics: %v", tactics)
	}
	if hits["Tamper v18"]["technique_id"] != "T1685" || hits["Tamper v18"]["tactic"] != "defense-impairment" {
		t.Errorf("19: %v", hits["Tamper v18"])
	}
	if !strings.Contains(summary, "by tactic (ATT&CK 19): stealth ") || strings.Contains(summary, "defense-evasion") {
		t.Errorf("19 summary:\n%s", summary)
	}
	if _, errs, code := quarry(t, t.TempDir(), "", "scan", "--attack", "17", src); code == 0 || !strings.Contains(errs, "--attack") {
		t.Errorf("--attack 17: exit %d: %s", code, errs)
	}
}
