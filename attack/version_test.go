package attack

import "testing"

// TestIDInVersion checks where technique IDs of either version land in the
// v18.1 and v19 matrices.
func TestIDInVersion(t *testing.T) {
	kb, err := Embedded()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ id, v18, v19 string }{
		{"T1685", "T1562.001", "T1685"},         // new in v19, named as the v18.1 sub-technique it replaced
		{"t1562.001", "T1562.001", "T1685"},     // revoked in v19
		{"T1686.003", "T1562.004", "T1686.003"}, // new sub-technique: its parent's predecessor
		{"T1070.001", "T1070.001", "T1685.005"},
		{"T1086", "T1059.001", "T1059.001"}, // revoked long before v18.1
		{"T1059.001", "T1059.001", "T1059.001"},
		{"T9999", "", ""},
	} {
		if got := kb.IDInVersion(c.id, false); got != c.v18 {
			t.Errorf("IDInVersion(%s, v18.1) = %q, want %q", c.id, got, c.v18)
		}
		if got := kb.IDInVersion(c.id, true); got != c.v19 {
			t.Errorf("IDInVersion(%s, v19) = %q, want %q", c.id, got, c.v19)
		}
	}
}

// TestLayerVersions checks that a v19 ID is counted in a v18.1 layer on its
// predecessor and in a v19 layer under its v19 tactic.
func TestLayerVersions(t *testing.T) {
	kb, err := Embedded()
	if err != nil {
		t.Fatal(err)
	}
	scores := map[string]LayerScore{"T1685": {Score: 2, Names: []string{"a"}}, "T1562.001": {Score: 1, Names: []string{"b"}}}
	cells := func(l *Layer) map[string]LayerTechnique {
		out := map[string]LayerTechnique{}
		for _, c := range l.Techniques {
			out[c.TechniqueID+"/"+c.Tactic] = c
		}
		return out
	}
	v18 := NewLayer(kb, "n", "d", "rules", scores)
	if c, ok := cells(v18)["T1562.001/defense-evasion"]; v18.Versions.ATTACK != "18" || !ok || *c.Score != 3 {
		t.Errorf("v18.1 layer (version %s): T1562.001 under defense-evasion %+v, want score 3", v18.Versions.ATTACK, c)
	}
	v19 := NewLayerV19(kb, "n", "d", "rules", scores)
	if c, ok := cells(v19)["T1685/defense-impairment"]; v19.Versions.ATTACK != "19" || !ok || *c.Score != 3 {
		t.Errorf("v19 layer (version %s): T1685 under defense-impairment %+v, want score 3", v19.Versions.ATTACK, c)
	}
	if len(v19.Techniques) != 1 {
		t.Errorf("v19 layer: %d cells, want 1 (T1562.001 folded into T1685)", len(v19.Techniques))
	}
}
