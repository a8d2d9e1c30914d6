package attacktables

import (
	"context"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/tables"
)

// relationSpec describes one relation table: which relations it serves and
// how its source column is named.
type relationSpec struct {
	name        string
	description string
	kind        attack.RelationKind
	sourceCol   string
	sourceDesc  string
	sourceFirst bool // source column before technique_id
}

var (
	mitigationRelation = relationSpec{
		name:        "attack_technique_mitigations",
		description: "Which ATT&CK mitigation mitigates which technique, with MITRE's text for the pair.",
		kind:        attack.Mitigates,
		sourceCol:   "mitigation_id",
		sourceDesc:  "Mitigation ID, e.g. M1036",
	}
	groupRelation = relationSpec{
		name:        "attack_group_techniques",
		description: "Which ATT&CK group uses which technique, with MITRE's text for the pair.",
		kind:        attack.GroupUses,
		sourceCol:   "group_id",
		sourceDesc:  "Group ID, e.g. G0007",
		sourceFirst: true,
	}
	softwareRelation = relationSpec{
		name:        "attack_software_techniques",
		description: "Which ATT&CK software (malware or tool) uses which technique, with MITRE's text for the pair.",
		kind:        attack.SoftwareUses,
		sourceCol:   "software_id",
		sourceDesc:  "Software ID, e.g. S0002",
		sourceFirst: true,
	}
)

func (s relationSpec) columns() []tables.Column {
	tech := idColumn("technique_id", "Technique ID")
	src := idColumn(s.sourceCol, s.sourceDesc)
	desc := textColumn("description", "MITRE's description of the relation")
	if s.sourceFirst {
		return []tables.Column{src, tech, desc}
	}
	return []tables.Column{tech, src, desc}
}

func relationTable(kb *attack.KB, s relationSpec) tables.Table {
	cols := s.columns()
	techPos, srcPos := 0, 1
	if s.sourceFirst {
		techPos, srcPos = 1, 0
	}
	return tables.Table{
		Name:        s.name,
		Description: s.description,
		Columns:     cols,
		Generate: func(ctx context.Context, q tables.QueryContext, emit tables.EmitFunc) error {
			row := make(tables.Row, len(cols))
			rels, keyed := s.lookup(kb, q)
			if !keyed {
				rels = kb.Relations(s.kind)
			}
			return stream(ctx, len(rels), func(i int) bool {
				r := &rels[i]
				row[techPos], row[srcPos], row[2] = r.TechniqueID, r.SourceID, r.Description
				return emit(row)
			})
		},
	}
}

// lookup returns the relations an equality constraint on technique_id or
// the source column selects, and whether there was one.
func (s relationSpec) lookup(kb *attack.KB, q tables.QueryContext) ([]attack.Relation, bool) {
	var out []attack.Relation
	if ids, ok := keys(q, "technique_id"); ok {
		for _, id := range ids {
			for _, r := range kb.RelationsOfTechnique(s.kind, id) {
				if r.TechniqueID == id {
					out = append(out, r)
				}
			}
		}
		return out, true
	}
	if ids, ok := keys(q, s.sourceCol); ok {
		for _, id := range ids {
			for _, r := range kb.RelationsOfSource(s.kind, id) {
				if r.SourceID == id {
					out = append(out, r)
				}
			}
		}
		return out, true
	}
	return nil, false
}
