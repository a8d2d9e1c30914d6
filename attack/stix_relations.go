package attack

import (
	"sort"
	"strings"
)

// applyRelationships reads the bundle's relationships into snap: parents of
// sub-techniques, revocations, mitigations and uses. Relationships whose ends
// are missing from the bundle, or are not ATT&CK objects, are skipped.
func (s *stixSet) applyRelationships(snap *snapshot) {
	techIdx := make(map[string]int, len(snap.Techniques))
	for i, t := range snap.Techniques {
		techIdx[t.ID] = i
	}
	groupIdx := make(map[string]int, len(snap.Groups))
	for i, g := range snap.Groups {
		groupIdx[g.ID] = i
	}
	softIdx := make(map[string]int, len(snap.Software))
	for i, sw := range snap.Software {
		softIdx[sw.ID] = i
	}
	for _, x := range s.relationships {
		o := x.o
		if o.Revoked || o.Deprecated {
			continue
		}
		src, dst := s.byRef[o.SourceRef], s.byRef[o.TargetRef]
		if src.o == nil || dst.o == nil {
			continue
		}
		srcID, dstID := s.attackID(o.SourceRef), s.attackID(o.TargetRef)
		if srcID == "" || dstID == "" {
			continue
		}
		rel := Relation{SourceID: srcID, TechniqueID: dstID, Description: strings.TrimSpace(o.Description)}
		toTechnique := dst.o.Type == "attack-pattern"
		switch o.RelType {
		case "subtechnique-of":
			if i, ok := techIdx[srcID]; ok && src.o.Type == "attack-pattern" && toTechnique {
				snap.Techniques[i].ParentID = dstID
			}
		case "revoked-by":
			setReplacedBy(snap, src.o.Type, srcID, dstID, techIdx, groupIdx, softIdx)
		case "mitigates":
			if src.o.Type == "course-of-action" && toTechnique {
				snap.Mitigates = append(snap.Mitigates, rel)
			}
		case "uses":
			if !toTechnique {
				continue
			}
			switch src.o.Type {
			case "intrusion-set":
				snap.GroupUses = append(snap.GroupUses, rel)
			case "malware", "tool":
				snap.SoftwareUses = append(snap.SoftwareUses, rel)
			}
		}
	}
	sortRelations(snap.Mitigates)
	sortRelations(snap.GroupUses)
	sortRelations(snap.SoftwareUses)
}

func setReplacedBy(snap *snapshot, typ, oldID, newID string, techIdx, groupIdx, softIdx map[string]int) {
	switch typ {
	case "attack-pattern":
		if i, ok := techIdx[oldID]; ok {
			snap.Techniques[i].ReplacedBy = newID
		}
	case "intrusion-set":
		if i, ok := groupIdx[oldID]; ok {
			snap.Groups[i].ReplacedBy = newID
		}
	case "malware", "tool":
		if i, ok := softIdx[oldID]; ok {
			snap.Software[i].ReplacedBy = newID
		}
	}
}

// sortRelations orders relations by technique, then source, for stable
// output whatever the bundle's order.
func sortRelations(rs []Relation) {
	sort.SliceStable(rs, func(i, j int) bool {
		if rs[i].TechniqueID != rs[j].TechniqueID {
			return rs[i].TechniqueID < rs[j].TechniqueID
		}
		return rs[i].SourceID < rs[j].SourceID
	})
}

// bundleRedirects lists the bundle's revoked objects (with their successor)
// and deprecated ones (with none). Deprecated mitigations whose ID is an old
// technique ID (ATT&CK's pre-2019 mitigations) are left out: redirecting
// that ID would shadow the live technique.
func bundleRedirects(snap *snapshot) []IDRedirect {
	var out []IDRedirect
	add := func(typ, prefix, id string, revoked, deprecated bool, replacedBy string) {
		if !strings.HasPrefix(id, prefix) {
			return
		}
		switch {
		case revoked:
			out = append(out, IDRedirect{OldID: id, NewID: replacedBy, Kind: RedirectRevoked, ObjectType: typ, AttackVersion: snap.Version})
		case deprecated:
			out = append(out, IDRedirect{OldID: id, Kind: RedirectDeprecated, ObjectType: typ, AttackVersion: snap.Version})
		}
	}
	for _, t := range snap.Techniques {
		add("technique", "T", t.ID, t.Revoked, t.Deprecated, t.ReplacedBy)
	}
	for _, m := range snap.Mitigations {
		add("mitigation", "M", m.ID, m.Revoked, m.Deprecated, "")
	}
	for _, g := range snap.Groups {
		add("group", "G", g.ID, g.Revoked, g.Deprecated, g.ReplacedBy)
	}
	for _, sw := range snap.Software {
		add("software", "S", sw.ID, sw.Revoked, sw.Deprecated, sw.ReplacedBy)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].OldID < out[j].OldID })
	return out
}
