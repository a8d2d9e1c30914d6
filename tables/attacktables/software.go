package attacktables

import (
	"context"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/tables"
)

var softwareColumns = []tables.Column{
	idColumn("id", "Software ID, e.g. S0002"),
	textColumn("name", "Software name"),
	textColumn("type", "malware or tool"),
	textColumn("aliases", "Other names, comma-separated"),
	textColumn("platforms", "Platforms, comma-separated"),
	textColumn("description", "Software description"),
	textColumn("url", "attack.attack.org page"),
	textColumn("version", "The object's own version"),
	intColumn("deprecated", "1 when deprecated"),
	intColumn("revoked", "1 when revoked"),
	textColumn("replaced_by", "ID of the software that revoked this one"),
	textColumn("attack_version", "ATT&CK release the row comes from"),
}

func softwareTable(kb *attack.KB) tables.Table {
	return tables.Table{
		Name: "attack_software",
		Description: "MITRE ATT&CK Enterprise software: malware and tools. Revoked and deprecated entries are " +
			"included, flagged; filter with revoked = 0 AND deprecated = 0.",
		Columns: softwareColumns,
		Generate: func(ctx context.Context, q tables.QueryContext, emit tables.EmitFunc) error {
			row := make(tables.Row, len(softwareColumns))
			send := func(s *attack.Software) bool {
				row[0], row[1], row[2], row[3] = s.ID, s.Name, s.Type, join(s.Aliases)
				row[4], row[5], row[6], row[7] = join(s.Platforms), s.Description, s.URL, s.Version
				row[8], row[9], row[10], row[11] = boolInt(s.Deprecated), boolInt(s.Revoked), s.ReplacedBy, s.AttackVersion
				return emit(row)
			}
			if ids, ok := keys(q, "id"); ok {
				return stream(ctx, len(ids), func(i int) bool {
					s, found := kb.SoftwareByID(ids[i])
					if !found || s.ID != ids[i] {
						return true
					}
					return send(s)
				})
			}
			all := kb.Software()
			return stream(ctx, len(all), func(i int) bool { return send(&all[i]) })
		},
	}
}
