package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestAttackLayerCoverageVersions writes the coverage layer of a rule
// tagged with v19's T1685 in both ATT&CK versions: v18.1 counts it on
// T1562.001 (which it replaced), v19 on T1685 under Defense Impairment; a
// wrong version is a usage error.
func TestAttackLayerCoverageVersions(t *testing.T) {
	dir := t.TempDir()
	rule := filepath.Join(dir, "r.yml")
	if err := os.WriteFile(rule, []byte(`title: Defender disabled
id: 6b0a0c5e-3d0e-4c3b-9a57-2f1e0d4c8b11
author: Quarry tests
tags: [attack.defense-impairment, attack.t1685]
logsource: {category: process_creation, product: windows}
detection:
    sel:
        CommandLine|contains: 'Set-MpPreference -DisableRealtimeMonitoring'
    condition: sel
level: high
`), 0o600); err != nil {
		t.Fatal(err)
	}
	layer := func(version string) (attack string, cells map[string]string) {
		out, errs, code := quarry(t, dir, "", "attack", "layer", "--coverage", "--no-builtin", "--rules", rule, "--attack", version)
		if code != 0 {
			t.Fatalf("--attack %s: exit %d: %s", version, code, errs)
		}
		var l struct {
			Versions   struct{ Attack string }
			Techniques []struct{ TechniqueID, Tactic string }
		}
		if err := json.Unmarshal([]byte(out), &l); err != nil {
			t.Fatalf("--attack %s: %v\n%s", version, err, out)
		}
		cells = map[string]string{}
		for _, c := range l.Techniques {
			cells[c.TechniqueID] = c.Tactic
		}
		return l.Versions.Attack, cells
	}
	if v, cells := layer("18.1"); v != "18" || cells["T1562.001"] != "defense-evasion" || len(cells) != 1 {
		t.Errorf("v18.1 layer: version %q, cells %v; want T1562.001 under defense-evasion only", v, cells)
	}
	if v, cells := layer("19"); v != "19" || cells["T1685"] != "defense-impairment" || len(cells) != 1 {
		t.Errorf("v19 layer: version %q, cells %v; want T1685 under defense-impairment only", v, cells)
	}
	if _, errs, code := quarry(t, dir, "", "attack", "layer", "--coverage", "--no-builtin", "--rules", rule, "--attack", "17"); code != 2 {
		t.Errorf("--attack 17: exit %d (%s), want 2", code, errs)
	}
}
