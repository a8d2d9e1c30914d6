package attack

import (
	"sort"
	"strings"
)

// RelationKind names one kind of technique relation.
type RelationKind int

// The relation kinds a KB holds.
const (
	Mitigates    RelationKind = iota // mitigation → technique
	GroupUses                        // group → technique
	SoftwareUses                     // software → technique
	relationKinds
)

// maxRedirectHops bounds how many redirects Resolve follows.
const maxRedirectHops = 8

// Version returns the ATT&CK version of the base bundle, e.g. "18.1".
func (kb *KB) Version() string { return kb.snap.Version }

// OverlayVersion returns the version of the overlay laid over the bundle,
// "" when there is none.
func (kb *KB) OverlayVersion() string { return kb.snap.OverlayVersion }

// Techniques returns every technique, revoked and deprecated ones and v19
// additions included, sorted by ID. The slice is shared: do not modify it.
func (kb *KB) Techniques() []Technique { return kb.snap.Techniques }

// Technique returns the technique with the ID (case-insensitive), without
// following redirects.
func (kb *KB) Technique(id string) (*Technique, bool) {
	t, ok := kb.techByID[normID(id)]
	return t, ok
}

// Resolve returns the technique an ID stands for. A live technique of that
// ID is returned as is. An ID that is unknown, revoked or deprecated is
// followed through its redirects (a few hops at most) to a known technique;
// redirectedFrom is then the ID asked for, in canonical form. A revoked or
// deprecated technique without a successor is returned itself. ok is false
// when nothing is known of the ID.
//
// A v18.1 technique revoked only in v19 is live in v18.1 and returned as is;
// its v19 successor is in ReplacedByV19 and in Redirects.
func (kb *KB) Resolve(id string) (tech *Technique, redirectedFrom string, ok bool) {
	want := normID(id)
	cur := want
	var fallback *Technique
	for hop := 0; hop <= maxRedirectHops; hop++ {
		t, found := kb.techByID[cur]
		if found && t.Live() {
			if cur != want {
				return t, want, true
			}
			return t, "", true
		}
		if found && fallback == nil {
			fallback = t
		}
		next := kb.successor(cur)
		if next == "" {
			break
		}
		cur = next
	}
	if fallback != nil {
		if fallback.ID != want {
			return fallback, want, true
		}
		return fallback, "", true
	}
	return nil, "", false
}

// successor returns the ID that replaces id, preferring a redirect of the
// base bundle's version over a later one, or "".
func (kb *KB) successor(id string) string {
	best := ""
	for _, i := range kb.redirByOld[id] {
		r := kb.snap.Redirects[i]
		if r.NewID == "" {
			continue
		}
		if best == "" || r.AttackVersion == kb.snap.Version {
			best = normID(r.NewID)
		}
	}
	return best
}

// Tactics returns the base bundle's tactics in matrix order (14 for v18.1).
func (kb *KB) Tactics() []*Tactic {
	var out []*Tactic
	for i := range kb.snap.Tactics {
		if t := &kb.snap.Tactics[i]; t.AttackVersion == kb.snap.Version {
			out = append(out, t)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].MatrixOrder < out[j].MatrixOrder })
	return out
}

// TacticsV19 returns the tactics of the v19 matrix in its order (15), or
// nil when no v19 overlay is loaded.
func (kb *KB) TacticsV19() []*Tactic {
	var out []*Tactic
	for i := range kb.snap.Tactics {
		if t := &kb.snap.Tactics[i]; t.MatrixOrderV19 > 0 {
			out = append(out, t)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].MatrixOrderV19 < out[j].MatrixOrderV19 })
	return out
}

// AllTactics returns every tactic row: the base bundle's, then the overlay's
// additions. The slice is shared: do not modify it.
func (kb *KB) AllTactics() []Tactic { return kb.snap.Tactics }

// Tactic returns the tactic with the shortname (case-insensitive), such as
// "execution", "stealth" or "defense-impairment".
func (kb *KB) Tactic(shortname string) (*Tactic, bool) {
	t, ok := kb.tacticByKey[strings.ToLower(strings.TrimSpace(shortname))]
	return t, ok
}

// TacticsByID returns the tactic rows with the ID: two for TA0005 once the
// v19 overlay is laid (defense-evasion in v18.1, stealth in v19).
func (kb *KB) TacticsByID(id string) []*Tactic { return kb.tacticsByID[normID(id)] }

// TechniquesByTactic returns the live techniques in the tactic (by
// shortname) in v18.1 or in v19, sorted by ID.
func (kb *KB) TechniquesByTactic(shortname string) []*Technique {
	tac, ok := kb.Tactic(shortname)
	if !ok {
		return nil
	}
	var out []*Technique
	for _, i := range kb.pairsByTacID[normID(tac.ID)] {
		p := kb.pairs[i]
		if p.Tactic != tac.ShortName {
			continue // the other tactic sharing the ID
		}
		if t := kb.techByID[normID(p.TechniqueID)]; t != nil && t.Live() {
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// TechniqueTactics returns every technique/tactic pair. The slice is shared.
func (kb *KB) TechniqueTactics() []TechniqueTactic { return kb.pairs }

// TechniqueTacticsOf returns the pairs of one technique.
func (kb *KB) TechniqueTacticsOf(techniqueID string) []TechniqueTactic {
	return pick(kb.pairs, kb.pairsByTech[normID(techniqueID)])
}

// TechniqueTacticsByTacticID returns the pairs of one tactic ID.
func (kb *KB) TechniqueTacticsByTacticID(tacticID string) []TechniqueTactic {
	return pick(kb.pairs, kb.pairsByTacID[normID(tacticID)])
}

// Mitigations returns every mitigation, deprecated ones included.
func (kb *KB) Mitigations() []Mitigation { return kb.snap.Mitigations }

// Mitigation returns the mitigation with the ID.
func (kb *KB) Mitigation(id string) (*Mitigation, bool) {
	m, ok := kb.mitByID[normID(id)]
	return m, ok
}

// Groups returns every group, revoked and deprecated ones included.
func (kb *KB) Groups() []Group { return kb.snap.Groups }

// Group returns the group with the ID.
func (kb *KB) Group(id string) (*Group, bool) {
	g, ok := kb.groupByID[normID(id)]
	return g, ok
}

// Software returns every software entry, revoked and deprecated ones
// included.
func (kb *KB) Software() []Software { return kb.snap.Software }

// SoftwareByID returns the software entry with the ID.
func (kb *KB) SoftwareByID(id string) (*Software, bool) {
	s, ok := kb.softByID[normID(id)]
	return s, ok
}

// Relations returns every relation of a kind. The slice is shared.
func (kb *KB) Relations(kind RelationKind) []Relation {
	if kind < 0 || kind >= relationKinds {
		return nil
	}
	return kb.rels[kind].all
}

// RelationsOfTechnique returns the relations of a kind that end at the
// technique.
func (kb *KB) RelationsOfTechnique(kind RelationKind, techniqueID string) []Relation {
	if kind < 0 || kind >= relationKinds {
		return nil
	}
	ix := kb.rels[kind]
	return pick(ix.all, ix.byTech[normID(techniqueID)])
}

// RelationsOfSource returns the relations of a kind that start at the
// mitigation, group or software ID.
func (kb *KB) RelationsOfSource(kind RelationKind, sourceID string) []Relation {
	if kind < 0 || kind >= relationKinds {
		return nil
	}
	ix := kb.rels[kind]
	return pick(ix.all, ix.bySource[normID(sourceID)])
}

// MitigationsOf returns the mitigations of a technique, with the text of
// each relation.
func (kb *KB) MitigationsOf(techniqueID string) []Relation {
	return kb.RelationsOfTechnique(Mitigates, techniqueID)
}

// GroupsUsing returns the groups that use a technique.
func (kb *KB) GroupsUsing(techniqueID string) []Relation {
	return kb.RelationsOfTechnique(GroupUses, techniqueID)
}

// SoftwareUsing returns the software that uses a technique.
func (kb *KB) SoftwareUsing(techniqueID string) []Relation {
	return kb.RelationsOfTechnique(SoftwareUses, techniqueID)
}

// Redirects returns every ID redirect. The slice is shared.
func (kb *KB) Redirects() []IDRedirect { return kb.snap.Redirects }

// RedirectsFrom returns the redirects of one old ID.
func (kb *KB) RedirectsFrom(oldID string) []IDRedirect {
	return pick(kb.snap.Redirects, kb.redirByOld[normID(oldID)])
}

func pick[T any](all []T, idx []int) []T {
	if len(idx) == 0 {
		return nil
	}
	out := make([]T, len(idx))
	for i, j := range idx {
		out[i] = all[j]
	}
	return out
}

// IDInVersion returns the ID under which technique id is shown in ATT&CK
// v18.1's matrix (v19 false: the base bundle's live techniques) or in
// v19's (v19 true: the techniques present in v19), "" when it has no place
// there. Rules and hits carry current IDs, some new in v19 (SigmaHQ's
// T1685), others of v18.1 that v19 revoked (T1562.001): an ID without a
// place moves, in v18.1, to the technique it replaced (the one of its name,
// else of its kind, else the first; a new sub-technique to its parent's
// predecessor), and in v19 to its v19 successor; an old revoked ID to its
// successor in both.
func (kb *KB) IDInVersion(id string, v19 bool) string {
	cur := normID(id)
	for hop := 0; hop <= 2*maxRedirectHops && cur != ""; hop++ {
		t, ok := kb.techByID[cur]
		if !ok {
			return ""
		}
		if kb.shownIn(t, v19) {
			return t.ID
		}
		if v19 && t.ReplacedByV19 != "" {
			cur = normID(t.ReplacedByV19)
			continue
		}
		if next := kb.successor(cur); next != "" && (v19 || !t.Live()) {
			cur = next
			continue
		}
		if preds := kb.predecessors(cur); !v19 && len(preds) > 0 {
			cur = kb.bestPredecessor(t, preds)
			continue
		}
		cur = normID(t.ParentID)
	}
	return ""
}

// shownIn reports whether t is a technique of the v18.1 matrix (v19 false)
// or of the v19 matrix.
func (kb *KB) shownIn(t *Technique, v19 bool) bool {
	if !t.Live() {
		return false
	}
	if v19 {
		return len(t.TacticsV19) > 0 && t.ReplacedByV19 == ""
	}
	return t.AttackVersion == kb.snap.Version
}

// predecessors returns the IDs redirected to id (canonical), sorted.
func (kb *KB) predecessors(id string) []string {
	var out []string
	for _, r := range kb.snap.Redirects {
		if normID(r.NewID) == id {
			out = append(out, normID(r.OldID))
		}
	}
	sort.Strings(out)
	return out
}

// bestPredecessor picks among the techniques t replaced the one of its
// name (T1685 Disable or Modify Tools replaced T1562, T1562.001 and
// T1562.006; T1562.001 has its name), else of its kind (technique or
// sub-technique), else the first.
func (kb *KB) bestPredecessor(t *Technique, preds []string) string {
	name := t.Name
	if t.NameV19 != "" {
		name = t.NameV19
	}
	best, rank := preds[0], 0
	for _, p := range preds {
		pt, ok := kb.techByID[p]
		switch {
		case ok && strings.EqualFold(pt.Name, name):
			return p
		case ok && rank < 1 && pt.IsSubtechnique == t.IsSubtechnique:
			best, rank = p, 1
		}
	}
	return best
}
