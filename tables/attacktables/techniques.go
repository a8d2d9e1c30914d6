package attacktables

import (
	"context"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/tables"
)

var techniqueColumns = []tables.Column{
	idColumn("id", "Technique ID, e.g. T1059.001"),
	textColumn("name", "Technique name"),
	textColumn("tactics", "Tactic shortnames, comma-separated, in matrix order"),
	textColumn("platforms", "Platforms, comma-separated"),
	intColumn("is_subtechnique", "1 for a sub-technique"),
	textColumn("parent_id", "Parent technique ID of a sub-technique, '' otherwise"),
	textColumn("description", "Technique description"),
	textColumn("detection", "Detection guidance: the descriptions of the technique's ATT&CK analytics, joined"),
	textColumn("data_components", "Data components the analytics read, comma-separated names"),
	textColumn("url", "attack.attack.org page"),
	textColumn("version", "The object's own version"),
	intColumn("deprecated", "1 when deprecated"),
	intColumn("revoked", "1 when revoked"),
	textColumn("replaced_by", "ID of the technique that revoked this one"),
	textColumn("attack_version", "ATT&CK release the row comes from: 18.1, or 19.0 for a technique only v19 has"),
	textColumn("log_sources", "Log sources the analytics read, comma-separated, e.g. WinEventLog:Sysmon"),
	textColumn("name_v19", "Name in ATT&CK v19, '' when not in v19"),
	textColumn("tactics_v19", "Tactic shortnames in ATT&CK v19, comma-separated, '' when not in v19"),
	textColumn("replaced_by_v19", "ID of the v19 technique that replaces this one when v19 revoked it"),
}

func techniquesTable(kb *attack.KB) tables.Table {
	return tables.Table{
		Name: "attack_techniques",
		Description: "MITRE ATT&CK Enterprise techniques and sub-techniques: v18.1, plus the techniques new in v19 " +
			"(attack_version 19.0: ID, name and tactics only). Revoked and deprecated techniques are included, " +
			"flagged; filter with revoked = 0 AND deprecated = 0 for the current set.",
		Columns: techniqueColumns,
		Generate: func(ctx context.Context, q tables.QueryContext, emit tables.EmitFunc) error {
			row := make(tables.Row, len(techniqueColumns))
			send := func(t *attack.Technique) bool {
				fillTechnique(row, t)
				return emit(row)
			}
			if ids, ok := keys(q, "id"); ok {
				return stream(ctx, len(ids), func(i int) bool {
					t, found := kb.Technique(ids[i])
					if !found || t.ID != ids[i] {
						return true
					}
					return send(t)
				})
			}
			all := kb.Techniques()
			return stream(ctx, len(all), func(i int) bool { return send(&all[i]) })
		},
	}
}

func fillTechnique(row tables.Row, t *attack.Technique) {
	row[0] = t.ID
	row[1] = t.Name
	row[2] = join(t.Tactics)
	row[3] = join(t.Platforms)
	row[4] = boolInt(t.IsSubtechnique)
	row[5] = t.ParentID
	row[6] = t.Description
	row[7] = t.Detection
	row[8] = join(t.DataComponents)
	row[9] = t.URL
	row[10] = t.Version
	row[11] = boolInt(t.Deprecated)
	row[12] = boolInt(t.Revoked)
	row[13] = t.ReplacedBy
	row[14] = t.AttackVersion
	row[15] = join(t.LogSources)
	row[16] = t.NameV19
	row[17] = join(t.TacticsV19)
	row[18] = t.ReplacedByV19
}
