package attacktables

import (
	"context"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/tables"
)

var groupColumns = []tables.Column{
	idColumn("id", "Group ID, e.g. G0007"),
	textColumn("name", "Group name"),
	textColumn("aliases", "Other names, comma-separated"),
	textColumn("description", "Group description"),
	textColumn("url", "attack.attack.org page"),
	textColumn("version", "The object's own version"),
	intColumn("deprecated", "1 when deprecated"),
	intColumn("revoked", "1 when revoked"),
	textColumn("replaced_by", "ID of the group that revoked this one"),
	textColumn("attack_version", "ATT&CK release the row comes from"),
}

func groupsTable(kb *attack.KB) tables.Table {
	return tables.Table{
		Name: "attack_groups",
		Description: "MITRE ATT&CK Enterprise groups (intrusion sets). Revoked and deprecated groups are included, " +
			"flagged; filter with revoked = 0 AND deprecated = 0.",
		Columns: groupColumns,
		Generate: func(ctx context.Context, q tables.QueryContext, emit tables.EmitFunc) error {
			row := make(tables.Row, len(groupColumns))
			send := func(g *attack.Group) bool {
				row[0], row[1], row[2], row[3], row[4] = g.ID, g.Name, join(g.Aliases), g.Description, g.URL
				row[5], row[6], row[7] = g.Version, boolInt(g.Deprecated), boolInt(g.Revoked)
				row[8], row[9] = g.ReplacedBy, g.AttackVersion
				return emit(row)
			}
			if ids, ok := keys(q, "id"); ok {
				return stream(ctx, len(ids), func(i int) bool {
					g, found := kb.Group(ids[i])
					if !found || g.ID != ids[i] {
						return true
					}
					return send(g)
				})
			}
			all := kb.Groups()
			return stream(ctx, len(all), func(i int) bool { return send(&all[i]) })
		},
	}
}
