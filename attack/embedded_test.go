package attack

import (
	"bytes"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestEmbeddedCounts(t *testing.T) {
	kb := mustEmbedded(t)
	got := kb.Counts()
	want := Counts{
		Version: "18.1", Techniques: 691, ParentTechniques: 216, Subtechniques: 475,
		Tactics: 14, Mitigations: 44, Groups: 172, Software: 784,
		Redirects: got.Redirects, TechniquesV19Added: 23, TacticsV19: 15,
	}
	if got != want {
		t.Errorf("Counts() = %+v\nwant %+v", got, want)
	}
	if kb.OverlayVersion() != VersionV19 {
		t.Errorf("OverlayVersion() = %q, want %q", kb.OverlayVersion(), VersionV19)
	}
}

func TestEmbeddedTacticsOrder(t *testing.T) {
	kb := mustEmbedded(t)
	tacs := kb.Tactics()
	if len(tacs) != 14 {
		t.Fatalf("Tactics() has %d, want 14", len(tacs))
	}
	for i, tac := range tacs {
		if tac.MatrixOrder != i+1 || tac.AttackVersion != "18.1" {
			t.Errorf("tactic %d: %s order %d version %s", i, tac.ShortName, tac.MatrixOrder, tac.AttackVersion)
		}
	}
	if tacs[0].ShortName != "reconnaissance" || tacs[13].ShortName != "impact" {
		t.Errorf("first/last tactic = %s/%s, want reconnaissance/impact", tacs[0].ShortName, tacs[13].ShortName)
	}
	v19 := kb.TacticsV19()
	var names []string
	for _, tac := range v19 {
		names = append(names, tac.ShortName)
	}
	if len(v19) != 15 || names[6] != "stealth" || names[7] != "defense-impairment" || slices.Contains(names, "defense-evasion") {
		t.Errorf("TacticsV19() = %v", names)
	}
	st, ok := kb.Tactic("Stealth")
	if !ok || st.ID != "TA0005" || st.AttackVersion != VersionV19 {
		t.Errorf("Tactic(stealth) = %+v, %v", st, ok)
	}
	di, ok := kb.Tactic("defense-impairment")
	if !ok || di.ID != "TA0112" || di.MatrixOrderV19 != 8 {
		t.Errorf("Tactic(defense-impairment) = %+v, %v", di, ok)
	}
	if n := len(kb.TacticsByID("ta0005")); n != 2 {
		t.Errorf("TacticsByID(TA0005) has %d rows, want 2", n)
	}
}

func TestEmbeddedV19Techniques(t *testing.T) {
	kb := mustEmbedded(t)
	tech, ok := kb.Technique("T1685")
	if !ok {
		t.Fatal("T1685 missing")
	}
	if tech.AttackVersion != VersionV19 || !slices.Equal(tech.Tactics, []string{"defense-impairment"}) ||
		tech.Name != "Disable or Modify Tools" || tech.IsSubtechnique {
		t.Errorf("T1685 = %+v", tech)
	}
	sub, ok := kb.Technique("T1685.005")
	if !ok || !sub.IsSubtechnique || sub.ParentID != "T1685" {
		t.Errorf("T1685.005 = %+v, %v", sub, ok)
	}
	// An existing technique moved from defense-evasion to stealth in v19.
	obf, _ := kb.Technique("T1027")
	if !slices.Equal(obf.Tactics, []string{"defense-evasion"}) || !slices.Equal(obf.TacticsV19, []string{"stealth"}) {
		t.Errorf("T1027 tactics %v, v19 %v", obf.Tactics, obf.TacticsV19)
	}
	if !containsID(kb.TechniquesByTactic("stealth"), "T1027") {
		t.Error("TechniquesByTactic(stealth) lacks T1027")
	}
	if !containsID(kb.TechniquesByTactic("defense-impairment"), "T1685") {
		t.Error("TechniquesByTactic(defense-impairment) lacks T1685")
	}
	if !containsID(kb.TechniquesByTactic("defense-evasion"), "T1027") {
		t.Error("TechniquesByTactic(defense-evasion) lacks T1027")
	}
	// A pair only v19 holds is marked 19.0.
	var found bool
	for _, p := range kb.TechniqueTacticsOf("T1027") {
		if p.Tactic == "stealth" {
			found = p.AttackVersion == VersionV19 && p.TacticID == "TA0005" && p.InV19
		}
	}
	if !found {
		t.Errorf("T1027 pairs = %+v", kb.TechniqueTacticsOf("T1027"))
	}
}

func TestEmbeddedV19Redirects(t *testing.T) {
	kb := mustEmbedded(t)
	n := 0
	for _, r := range kb.Redirects() {
		if r.AttackVersion == VersionV19 {
			n++
			if r.Kind != RedirectRevoked || r.NewID == "" {
				t.Errorf("v19 redirect %+v", r)
			}
		}
	}
	if n != 17 {
		t.Errorf("%d v19 redirects, want 17", n)
	}
	for old, want := range map[string]string{"T1562.001": "T1685", "T1656": "T1684.001", "T1070.001": "T1685.005"} {
		rs := kb.RedirectsFrom(old)
		if len(rs) != 1 || rs[0].NewID != want {
			t.Errorf("RedirectsFrom(%s) = %+v, want -> %s", old, rs, want)
		}
		tech, _ := kb.Technique(old)
		if tech.ReplacedByV19 != want || !tech.Live() {
			t.Errorf("%s: ReplacedByV19 %q live %v", old, tech.ReplacedByV19, tech.Live())
		}
	}
}

func TestResolve(t *testing.T) {
	kb := mustEmbedded(t)
	cases := []struct {
		in, wantID, wantFrom string
	}{
		{"T1059.001", "T1059.001", ""},
		{" t1059.001 ", "T1059.001", ""},
		{"T1143", "T1564.003", "T1143"}, // revoked in the v18 bundle
		{"t1086", "T1059.001", "T1086"},
		{"T1685", "T1685", ""},          // v19-only
		{"T1562.001", "T1562.001", ""},  // live in v18.1, revoked in v19
		{"T1089", "T1562.001", "T1089"}, // revoked in v18 by a technique v19 revoked
	}
	for _, c := range cases {
		tech, from, ok := kb.Resolve(c.in)
		if !ok || tech.ID != c.wantID || from != c.wantFrom {
			id := ""
			if tech != nil {
				id = tech.ID
			}
			t.Errorf("Resolve(%q) = %s, %q, %v; want %s, %q", c.in, id, from, ok, c.wantID, c.wantFrom)
		}
	}
	if _, _, ok := kb.Resolve("T9999"); ok {
		t.Error("Resolve(T9999) ok")
	}
	// A deprecated technique with no successor resolves to itself.
	for _, r := range kb.Redirects() {
		if r.Kind == RedirectDeprecated && r.ObjectType == "technique" {
			tech, from, ok := kb.Resolve(r.OldID)
			if !ok || tech.ID != r.OldID || from != "" || !tech.Deprecated {
				t.Errorf("Resolve(%s) = %+v, %q, %v", r.OldID, tech, from, ok)
			}
			break
		}
	}
}

func TestLookupsAndSearch(t *testing.T) {
	kb := mustEmbedded(t)
	ps, _ := kb.Technique("T1059.001")
	if ps.Detection == "" || !slices.Contains(ps.DataComponents, "Process Creation") || ps.ParentID != "T1059" {
		t.Errorf("T1059.001 detection %d bytes, components %v, parent %q", len(ps.Detection), ps.DataComponents, ps.ParentID)
	}
	if len(kb.MitigationsOf("T1059.001")) == 0 || len(kb.GroupsUsing("T1059.001")) == 0 || len(kb.SoftwareUsing("T1059.001")) == 0 {
		t.Error("T1059.001 has no mitigations, groups or software")
	}
	if m, ok := kb.Mitigation("m1036"); !ok || m.Name == "" {
		t.Error("Mitigation(M1036) missing")
	}
	if g, ok := kb.Group("G0007"); !ok || g.Name != "APT28" {
		t.Errorf("Group(G0007) = %+v", g)
	}
	if s, ok := kb.SoftwareByID("S0002"); !ok || s.Type != "tool" {
		t.Errorf("SoftwareByID(S0002) = %+v", s)
	}
	hits := kb.Search("powershell", 5)
	if len(hits) == 0 || hits[0].ID != "T1059.001" {
		t.Errorf("Search(powershell) first = %v", ids(hits))
	}
	if hits := kb.Search("t1003", 1); len(hits) != 1 || hits[0].ID != "T1003" {
		t.Errorf("Search(t1003) = %v", ids(hits))
	}
	if kb.Search("  ", 0) != nil {
		t.Error("empty search returned hits")
	}
	if kb.Relations(RelationKind(99)) != nil {
		t.Error("unknown relation kind returned relations")
	}
}

func TestCompactRoundTrip(t *testing.T) {
	kb := mustEmbedded(t)
	var buf bytes.Buffer
	if err := WriteCompact(&buf, kb); err != nil {
		t.Fatal(err)
	}
	kb2, err := ReadCompact(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if kb.Counts() != kb2.Counts() || len(kb.Relations(SoftwareUses)) != len(kb2.Relations(SoftwareUses)) {
		t.Errorf("round trip changed the KB: %+v vs %+v", kb.Counts(), kb2.Counts())
	}
	if _, err := ReadCompact(bytes.NewReader([]byte("not gzip"))); err == nil {
		t.Error("ReadCompact(garbage) gave no error")
	}
}

// TestFlatForm: the binary's knowledge base is the flat form of itself
// (what WriteFlat writes of it), reads back as the gob form does (every
// field of every object), and damaged or foreign data is refused with an
// error, never a panic.
func TestFlatForm(t *testing.T) {
	kb := mustEmbedded(t)
	var flat, gz bytes.Buffer
	if err := WriteFlat(&flat, kb); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(flat.Bytes(), embeddedKB) {
		t.Errorf("embedded data (%d bytes) is not WriteFlat's form of itself (%d bytes)", len(embeddedKB), flat.Len())
	}
	if err := WriteCompact(&gz, kb); err != nil {
		t.Fatal(err)
	}
	viaGob, err := ReadCompact(&gz)
	if err != nil {
		t.Fatal(err)
	}
	viaFlat, err := readFlat(flat.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(viaGob.snap, viaFlat.snap) {
		t.Error("flat form reads back other data than the gob form")
	}
	if len(viaFlat.snap.Techniques) == 0 || viaFlat.snap.Techniques[0].Description == "" || len(viaFlat.snap.Mitigates) == 0 {
		t.Fatal("flat form read back empty")
	}
	b := flat.Bytes()
	for _, bad := range [][]byte{nil, []byte("QKBF1\n"), b[:len(b)/2], append(slices.Clone(b), 0), []byte(strings.Replace(string(b), "QKBF1", "QKBF2", 1))} {
		if _, err := readFlat(bad); err == nil {
			t.Errorf("%d bytes of damaged data: no error", len(bad))
		}
	}
	schema := slices.Clone(b)
	schema[len(flatMagic)] ^= 1
	if _, err := readFlat(schema); err == nil || !strings.Contains(err.Error(), "another layout") {
		t.Errorf("other schema: %v", err)
	}
}

func FuzzReadFlat(f *testing.F) {
	var b bytes.Buffer
	WriteFlat(&b, &KB{snap: snapshot{Version: "1", Techniques: []Technique{{ID: "T1", Name: "x", Tactics: []string{"a"}}}, Tactics: []Tactic{{ID: "TA1", ShortName: "a", MatrixOrder: -3}}}})
	f.Add(b.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		kb, err := readFlat(data)
		if err == nil && len(kb.snap.Techniques) == 0 {
			t.Fatal("no error and no techniques")
		}
	})
}

func BenchmarkLoadEmbedded(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := readFlat(embeddedKB); err != nil {
			b.Fatal(err)
		}
	}
}

func containsID(ts []*Technique, id string) bool {
	return slices.Contains(ids(ts), id)
}

func ids(ts []*Technique) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.ID
	}
	return out
}
