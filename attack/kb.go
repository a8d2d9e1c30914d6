package attack

import (
	"sort"
	"strings"
)

// snapshot is everything a KB knows, with no indexes: what ParseSTIX builds,
// what the overlay extends and what the compact form stores.
type snapshot struct {
	Version      string // ATT&CK version of the base bundle, e.g. "18.1"
	Techniques   []Technique
	Tactics      []Tactic
	Mitigations  []Mitigation
	Groups       []Group
	Software     []Software
	Mitigates    []Relation
	GroupUses    []Relation
	SoftwareUses []Relation
	Redirects    []IDRedirect
	// OverlayVersion is the version of the overlay laid over the bundle, ""
	// when none was.
	OverlayVersion string
}

// KB is a read-only ATT&CK knowledge base, safe for concurrent use.
type KB struct {
	snap snapshot

	techByID    map[string]*Technique
	tacticByKey map[string]*Tactic // by shortname
	tacticsByID map[string][]*Tactic
	mitByID     map[string]*Mitigation
	groupByID   map[string]*Group
	softByID    map[string]*Software

	rels [relationKinds]relationIndex

	redirByOld map[string][]int

	pairs        []TechniqueTactic
	pairsByTech  map[string][]int
	pairsByTacID map[string][]int
}

// relationIndex indexes one kind of relation by both ends.
type relationIndex struct {
	all      []Relation
	byTech   map[string][]int
	bySource map[string][]int
}

// normID is the canonical form of an ATT&CK ID: trimmed, upper case.
func normID(id string) string {
	return strings.ToUpper(strings.TrimSpace(id))
}

// newKB indexes s. It takes ownership of s's slices.
func newKB(s snapshot) *KB {
	kb := &KB{snap: s}
	sort.SliceStable(kb.snap.Techniques, func(i, j int) bool {
		return kb.snap.Techniques[i].ID < kb.snap.Techniques[j].ID
	})
	kb.techByID = make(map[string]*Technique, len(s.Techniques))
	for i := range kb.snap.Techniques {
		t := &kb.snap.Techniques[i]
		kb.techByID[normID(t.ID)] = t
	}
	kb.indexTactics()
	kb.mitByID = make(map[string]*Mitigation, len(s.Mitigations))
	for i := range kb.snap.Mitigations {
		kb.mitByID[normID(kb.snap.Mitigations[i].ID)] = &kb.snap.Mitigations[i]
	}
	kb.groupByID = make(map[string]*Group, len(s.Groups))
	for i := range kb.snap.Groups {
		kb.groupByID[normID(kb.snap.Groups[i].ID)] = &kb.snap.Groups[i]
	}
	kb.softByID = make(map[string]*Software, len(s.Software))
	for i := range kb.snap.Software {
		kb.softByID[normID(kb.snap.Software[i].ID)] = &kb.snap.Software[i]
	}
	kb.rels[Mitigates] = indexRelations(kb.snap.Mitigates)
	kb.rels[GroupUses] = indexRelations(kb.snap.GroupUses)
	kb.rels[SoftwareUses] = indexRelations(kb.snap.SoftwareUses)
	kb.redirByOld = make(map[string][]int, len(s.Redirects))
	for i, r := range kb.snap.Redirects {
		k := normID(r.OldID)
		kb.redirByOld[k] = append(kb.redirByOld[k], i)
	}
	kb.indexPairs()
	return kb
}

func (kb *KB) indexTactics() {
	kb.tacticByKey = make(map[string]*Tactic, len(kb.snap.Tactics))
	kb.tacticsByID = make(map[string][]*Tactic, len(kb.snap.Tactics))
	for i := range kb.snap.Tactics {
		t := &kb.snap.Tactics[i]
		kb.tacticByKey[strings.ToLower(t.ShortName)] = t
		id := normID(t.ID)
		kb.tacticsByID[id] = append(kb.tacticsByID[id], t)
	}
}

func indexRelations(all []Relation) relationIndex {
	ix := relationIndex{
		all:      all,
		byTech:   make(map[string][]int),
		bySource: make(map[string][]int),
	}
	for i, r := range all {
		ix.byTech[normID(r.TechniqueID)] = append(ix.byTech[normID(r.TechniqueID)], i)
		ix.bySource[normID(r.SourceID)] = append(ix.bySource[normID(r.SourceID)], i)
	}
	return ix
}

// indexPairs builds the technique/tactic pairs: every v18 pair, then every
// v19 pair that v18 lacks.
func (kb *KB) indexPairs() {
	kb.pairsByTech = make(map[string][]int)
	kb.pairsByTacID = make(map[string][]int)
	add := func(p TechniqueTactic) {
		kb.pairs = append(kb.pairs, p)
		i := len(kb.pairs) - 1
		kb.pairsByTech[normID(p.TechniqueID)] = append(kb.pairsByTech[normID(p.TechniqueID)], i)
		kb.pairsByTacID[normID(p.TacticID)] = append(kb.pairsByTacID[normID(p.TacticID)], i)
	}
	for i := range kb.snap.Techniques {
		t := &kb.snap.Techniques[i]
		inV19 := make(map[string]bool, len(t.TacticsV19))
		for _, s := range t.TacticsV19 {
			inV19[s] = true
		}
		seen := make(map[string]bool, len(t.Tactics))
		for _, s := range t.Tactics {
			seen[s] = true
			add(TechniqueTactic{
				TechniqueID:   t.ID,
				TacticID:      kb.tacticID(s),
				Tactic:        s,
				AttackVersion: t.AttackVersion,
				InV19:         inV19[s],
			})
		}
		for _, s := range t.TacticsV19 {
			if seen[s] {
				continue
			}
			add(TechniqueTactic{
				TechniqueID:   t.ID,
				TacticID:      kb.tacticID(s),
				Tactic:        s,
				AttackVersion: VersionV19,
				InV19:         true,
			})
		}
	}
}

func (kb *KB) tacticID(shortname string) string {
	if t, ok := kb.tacticByKey[strings.ToLower(shortname)]; ok {
		return t.ID
	}
	return ""
}
