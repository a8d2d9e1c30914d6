package attack

import (
	"strings"
	"testing"
)

// TestPlaceOneVocabulary: a builtin rule (defense-evasion, T1562.001) and a
// SigmaHQ rule (defense-impairment, T1685) read the same in each version,
// with no tactic of the other version.
func TestPlaceOneVocabulary(t *testing.T) {
	kb := mustEmbedded(t)
	cases := []struct {
		id      string
		tactics []string
		v19     bool
		wantID  string
		want    string
	}{
		{"T1562.001", []string{"defense-evasion"}, false, "T1562.001", "defense-evasion"},
		{"T1685", []string{"defense-impairment"}, false, "T1562.001", "defense-evasion"},
		{"T1562.001", []string{"defense-evasion"}, true, "T1685", "defense-impairment"},
		{"T1685", []string{"defense-impairment"}, true, "T1685", "defense-impairment"},
		// A multi-tactic technique keeps the rule's tactic.
		{"T1078", []string{"persistence"}, false, "T1078", "persistence"},
		// No technique: the rule's tactics, mapped.
		{"", []string{"stealth", "execution"}, false, "", "execution,defense-evasion"},
		{"", []string{"defense-evasion"}, true, "", "stealth"},
	}
	for _, c := range cases {
		p := kb.Place(c.id, c.tactics, c.v19)
		if p.ID != c.wantID || strings.Join(p.Tactics, ",") != c.want {
			t.Errorf("Place(%s, %v, v19=%v) = %+v, want %s %s", c.id, c.tactics, c.v19, p, c.wantID, c.want)
		}
		for _, s := range p.Tactics {
			tac, _ := kb.Tactic(s)
			if !kb.tacticInVersion(tac, c.v19) {
				t.Errorf("Place(%s, v19=%v): tactic %s is not of that version", c.id, c.v19, s)
			}
		}
	}
	if got := kb.TacticIn("defense-impairment", false); got != "defense-evasion" {
		t.Errorf("TacticIn(defense-impairment, 18.1) = %q", got)
	}
	if got := kb.TacticIn("nonsense", false); got != "" {
		t.Errorf("TacticIn(nonsense) = %q", got)
	}
}

func TestParseVersion(t *testing.T) {
	for s, want := range map[string]bool{"": false, "18.1": false, "v18": false, "19": true, "19.0": true} {
		if got, err := ParseVersion(s); err != nil || got != want {
			t.Errorf("ParseVersion(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseVersion("17"); err == nil {
		t.Error("ParseVersion(17): no error")
	}
}
