package attack

import (
	"fmt"
	"sort"
	"strings"
)

// Placement is where a technique, under the ID a rule or hit names it by,
// sits in one ATT&CK version's matrix: v18.1 (the base bundle) or v19.
type Placement struct {
	// ID is the technique's ID in that version (see IDInVersion), "" when
	// the ID has no place there (unknown to the KB).
	ID string
	// Name is its name in that version.
	Name string
	// Tactics are tactic shortnames of that version only, in its matrix
	// order.
	Tactics []string
}

// Place resolves a technique ID as a rule wrote it (any version's) with the
// tactics the rule gave it (either version's shortnames) into one version's
// vocabulary: v19 false for v18.1, true for v19. The tactics are the
// technique's tactics in that version that the rule's tactics, mapped into
// the version (TacticIn), name; all of the technique's when they name none.
// An empty or unknown techniqueID keeps only the mapped rule tactics.
func (kb *KB) Place(techniqueID string, ruleTactics []string, v19 bool) Placement {
	var mapped []string
	seen := map[string]bool{}
	for _, s := range ruleTactics {
		if m := kb.TacticIn(s, v19); m != "" && !seen[m] {
			seen[m] = true
			mapped = append(mapped, m)
		}
	}
	var p Placement
	if id := kb.IDInVersion(techniqueID, v19); id != "" {
		t := kb.techByID[normID(id)]
		p.ID, p.Name = t.ID, t.Name
		own := t.Tactics
		if v19 {
			own = t.TacticsV19
			if t.NameV19 != "" {
				p.Name = t.NameV19
			}
		}
		for _, s := range own {
			if seen[s] {
				p.Tactics = append(p.Tactics, s)
			}
		}
		if len(p.Tactics) == 0 {
			p.Tactics = append([]string(nil), own...)
		}
	} else {
		p.Tactics = mapped
	}
	kb.sortTactics(p.Tactics, v19)
	return p
}

// TacticIn maps a tactic shortname of either version onto the version's
// vocabulary (v19 false: v18.1), "" when unknown: a tactic of the version is
// itself; another goes to the version's tactic of the same ID (v18.1's
// defense-evasion and v19's stealth are both TA0005), else to the tactic
// that holds, in the version, most of its techniques (v19's
// defense-impairment to v18.1's defense-evasion).
func (kb *KB) TacticIn(shortname string, v19 bool) string {
	t, ok := kb.Tactic(shortname)
	if !ok {
		return ""
	}
	if kb.tacticInVersion(t, v19) {
		return t.ShortName
	}
	for _, o := range kb.TacticsByID(t.ID) {
		if kb.tacticInVersion(o, v19) {
			return o.ShortName
		}
	}
	count := map[string]int{}
	for i := range kb.snap.Techniques {
		tech := &kb.snap.Techniques[i]
		from, to := tech.TacticsV19, tech.Tactics
		if v19 {
			from, to = to, from
		}
		if !contains(from, t.ShortName) {
			continue
		}
		for _, s := range to {
			if o, ok := kb.Tactic(s); ok && kb.tacticInVersion(o, v19) {
				count[s]++
			}
		}
	}
	best := ""
	for s, n := range count {
		if best == "" || n > count[best] || (n == count[best] && s < best) {
			best = s
		}
	}
	return best
}

// tacticInVersion reports whether t is a tactic of the v18.1 matrix (v19
// false) or of the v19 matrix.
func (kb *KB) tacticInVersion(t *Tactic, v19 bool) bool {
	if v19 {
		return t.MatrixOrderV19 > 0
	}
	return t.AttackVersion == kb.snap.Version
}

// sortTactics orders shortnames by the version's matrix.
func (kb *KB) sortTactics(ts []string, v19 bool) {
	order := func(s string) int {
		t, ok := kb.Tactic(s)
		switch {
		case !ok:
			return 1 << 20
		case v19:
			return t.MatrixOrderV19
		}
		return t.MatrixOrder
	}
	sort.SliceStable(ts, func(i, j int) bool { return order(ts[i]) < order(ts[j]) })
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// Versions a view can be shown in (ParseVersion).
const (
	ViewV18 = "18.1"
	ViewV19 = "19"
)

// ParseVersion reads the ATT&CK version a user chose for a view: "18.1"
// (or "18", the default when empty) or "19" (or "19.0"); v19 reports the
// latter.
func ParseVersion(s string) (v19 bool, err error) {
	switch strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), "v") {
	case "", "18", "18.1":
		return false, nil
	case "19", "19.0":
		return true, nil
	}
	return false, fmt.Errorf("ATT&CK version %q: want 18.1 or 19", s)
}

// TacticsOf gives the tactics of a group of hits (an incident: its
// technique IDs and the tactics its hits were stored with, of either
// version) in one version's vocabulary, in its matrix order: in v18.1 the
// stored tactics mapped (TacticIn); in v19 the v19 tactics of its
// techniques placed with the stored tactics (Place), plus the stored
// tactics no technique accounts for, mapped (a rule tagged with a tactic
// only). defense-evasion maps to v19's stealth only when no technique
// gave stealth or defense-impairment.
func (kb *KB) TacticsOf(techniques, tactics []string, v19 bool) []string {
	var out []string
	seen := map[string]bool{}
	add := func(ts ...string) {
		for _, t := range ts {
			if t != "" && !seen[t] {
				seen[t] = true
				out = append(out, t)
			}
		}
	}
	if v19 {
		for _, id := range techniques {
			add(kb.Place(id, tactics, true).Tactics...)
		}
	}
	for _, s := range tactics {
		m := kb.TacticIn(s, v19)
		if v19 && kb.TacticIn(s, false) == "defense-evasion" && (seen["stealth"] || seen["defense-impairment"]) {
			continue
		}
		add(m)
	}
	kb.sortTactics(out, v19)
	return out
}
