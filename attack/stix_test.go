package attack

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseSTIXMini(t *testing.T) {
	kb := parseFile(t, filepath.Join("testdata", "mini.json"))
	if kb.Version() != "18.1" {
		t.Errorf("Version() = %q", kb.Version())
	}
	tacs := kb.Tactics()
	if len(tacs) != 2 || tacs[0].ShortName != "execution" || tacs[1].ShortName != "defense-evasion" || tacs[1].MatrixOrder != 2 {
		t.Fatalf("tactics not in matrix order: %+v", tacs)
	}
	ps, ok := kb.Technique("T1059.001")
	if !ok {
		t.Fatal("T1059.001 missing")
	}
	// Tactics come back in matrix order whatever the kill chain order.
	if !slices.Equal(ps.Tactics, []string{"execution", "defense-evasion"}) || ps.ParentID != "T1059" || !ps.IsSubtechnique {
		t.Errorf("T1059.001 = %+v", ps)
	}
	if ps.Detection != "AN0001 (Windows): Watch powershell.exe -enc." {
		t.Errorf("detection = %q", ps.Detection)
	}
	if !slices.Equal(ps.DataComponents, []string{"Process Creation"}) || !slices.Equal(ps.LogSources, []string{"WinEventLog:Sysmon"}) {
		t.Errorf("components %v, log sources %v", ps.DataComponents, ps.LogSources)
	}
	old, _ := kb.Technique("T1086")
	if !old.Revoked || old.ReplacedBy != "T1059.001" {
		t.Errorf("T1086 = %+v", old)
	}
	if rs := kb.RedirectsFrom("T1086"); len(rs) != 1 || rs[0].Kind != RedirectRevoked || rs[0].NewID != "T1059.001" {
		t.Errorf("RedirectsFrom(T1086) = %+v", rs)
	}
	if rs := kb.RedirectsFrom("T1099"); len(rs) != 1 || rs[0].Kind != RedirectDeprecated || rs[0].NewID != "" {
		t.Errorf("RedirectsFrom(T1099) = %+v", rs)
	}
	if ms := kb.MitigationsOf("T1059.001"); len(ms) != 1 || ms[0].SourceID != "M1038" || ms[0].Description != "Use AppLocker." {
		t.Errorf("MitigationsOf = %+v", ms)
	}
	if gs := kb.GroupsUsing("T1059.001"); len(gs) != 1 || gs[0].SourceID != "G0016" {
		t.Errorf("GroupsUsing = %+v", gs)
	}
	if ss := kb.SoftwareUsing("T1059"); len(ss) != 1 || ss[0].SourceID != "S0367" {
		t.Errorf("SoftwareUsing(T1059) = %+v", ss)
	}
	if len(kb.Relations(GroupUses)) != 1 {
		t.Errorf("group → software uses counted as technique uses: %+v", kb.Relations(GroupUses))
	}
	g, _ := kb.Group("G0016")
	if !slices.Equal(g.Aliases, []string{"Cozy Bear"}) {
		t.Errorf("aliases = %v", g.Aliases)
	}
	c := kb.Counts()
	if c.Techniques != 2 || c.Subtechniques != 1 || c.Software != 2 || c.Mitigations != 1 {
		t.Errorf("Counts() = %+v", c)
	}
}

func TestParseSTIXOverlay(t *testing.T) {
	ov, err := EmbeddedOverlay()
	if err != nil {
		t.Fatal(err)
	}
	kb := parseFile(t, filepath.Join("testdata", "mini.json")).WithOverlay(ov)
	if _, ok := kb.Technique("T1685"); !ok {
		t.Error("overlay did not add T1685")
	}
	if _, ok := kb.Tactic("stealth"); !ok {
		t.Error("overlay did not add stealth")
	}
	// An overlay never applies over a base as new as itself.
	base := parseFile(t, filepath.Join("testdata", "mini.json"))
	base.snap.Version = "19.1"
	if got := base.WithOverlay(ov); got.OverlayVersion() != "" || len(got.Techniques()) != len(base.Techniques()) {
		t.Error("overlay applied over a v19 base")
	}
}

func TestParseSTIXBadInput(t *testing.T) {
	mini, err := os.ReadFile(filepath.Join("testdata", "mini.json"))
	if err != nil {
		t.Fatal(err)
	}
	noMatrix := strings.Replace(string(mini), `"x-mitre-matrix"`, `"x-other-matrix"`, 1)
	badRef := strings.Replace(string(mini), `"x-mitre-tactic--exec", "x-mitre-tactic--evade"`, `"x-mitre-tactic--exec", "x-mitre-tactic--nope"`, 1)
	badField := strings.Replace(string(mini), `"revoked": true`, `"revoked": "yes"`, 1)
	noTacticID := strings.Replace(string(mini), `"external_id": "TA0002"`, `"external_id": ""`, 1)
	cases := []struct {
		name, input string
		want        []string
	}{
		{"empty", "", []string{"not JSON", "truncated"}},
		{"not JSON", "hello", []string{"not JSON", "offset"}},
		{"truncated", string(mini[:len(mini)/2]), []string{"objects[", "byte offset", "input truncated"}},
		{"array", `[1, 2]`, []string{"top-level value is an array"}},
		{"not a bundle", `{"type": "indicator", "objects": []}`, []string{`"indicator"`, `want "bundle"`}},
		{"no type", `{"objects": []}`, []string{`no "type"`}},
		{"no objects", `{"type": "bundle"}`, []string{`no "objects"`}},
		{"objects not array", `{"type": "bundle", "objects": {}}`, []string{`"objects" is an object`}},
		{"no ATT&CK", `{"type": "bundle", "objects": [{"type": "indicator", "id": "indicator--1"}]}`, []string{"no attack-pattern"}},
		{"object without id", `{"type": "bundle", "objects": [{"type": "attack-pattern"}]}`, []string{"objects[0]", `no "id"`}},
		{"object not an object", `{"type": "bundle", "objects": [42]}`, []string{"objects[0]"}},
		{"trailing data", `{"type": "bundle", "objects": []} x`, []string{"after the bundle"}},
		{"no matrix", noMatrix, []string{"no x-mitre-matrix"}},
		{"bad tactic ref", badRef, []string{"tactic_refs[1]", "x-mitre-tactic--nope"}},
		{"bad field type", badField, []string{"objects[6]", `field "revoked" is a JSON string, want boolean`}},
		{"tactic without id", noTacticID, []string{"x-mitre-tactic--exec", "external_id"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			kb, err := ParseSTIX(strings.NewReader(c.input))
			if err == nil {
				t.Fatalf("no error; KB %+v", kb.Counts())
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func FuzzParseSTIX(f *testing.F) {
	mini, err := os.ReadFile(filepath.Join("testdata", "mini.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(mini)
	f.Add(mini[:len(mini)/3])
	f.Add([]byte(`{"type":"bundle","objects":[]}`))
	f.Add([]byte(`{"type":"bundle","objects":[{"type":"attack-pattern","id":"attack-pattern--1","kill_chain_phases":[{}]}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		kb, err := ParseSTIX(strings.NewReader(string(data)))
		if err != nil {
			return
		}
		// Whatever parsed must serve every query without panicking.
		for _, tech := range kb.Techniques() {
			kb.Resolve(tech.ID)
			kb.TechniqueTacticsOf(tech.ID)
			kb.MitigationsOf(tech.ID)
		}
		for _, tac := range kb.AllTactics() {
			kb.TechniquesByTactic(tac.ShortName)
		}
		kb.Search("a", 3)
		kb.Counts()
	})
}
