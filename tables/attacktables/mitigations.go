package attacktables

import (
	"context"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/tables"
)

var mitigationColumns = []tables.Column{
	idColumn("id", "Mitigation ID, e.g. M1036"),
	textColumn("name", "Mitigation name"),
	textColumn("description", "Mitigation description"),
	textColumn("url", "attack.attack.org page"),
	textColumn("version", "The object's own version"),
	intColumn("deprecated", "1 when deprecated"),
	intColumn("revoked", "1 when revoked"),
	textColumn("attack_version", "ATT&CK release the row comes from"),
}

func mitigationsTable(kb *attack.KB) tables.Table {
	return tables.Table{
		Name: "attack_mitigations",
		Description: "MITRE ATT&CK Enterprise mitigations. Deprecated ones (among them the pre-2019 mitigations " +
			"that carry technique IDs) are included, flagged; filter with deprecated = 0 AND revoked = 0.",
		Columns: mitigationColumns,
		Generate: func(ctx context.Context, q tables.QueryContext, emit tables.EmitFunc) error {
			row := make(tables.Row, len(mitigationColumns))
			send := func(m *attack.Mitigation) bool {
				row[0], row[1], row[2], row[3], row[4] = m.ID, m.Name, m.Description, m.URL, m.Version
				row[5], row[6], row[7] = boolInt(m.Deprecated), boolInt(m.Revoked), m.AttackVersion
				return emit(row)
			}
			if ids, ok := keys(q, "id"); ok {
				return stream(ctx, len(ids), func(i int) bool {
					m, found := kb.Mitigation(ids[i])
					if !found || m.ID != ids[i] {
						return true
					}
					return send(m)
				})
			}
			all := kb.Mitigations()
			return stream(ctx, len(all), func(i int) bool { return send(&all[i]) })
		},
	}
}
