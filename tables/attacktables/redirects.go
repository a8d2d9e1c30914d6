package attacktables

import (
	"context"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/tables"
)

var redirectColumns = []tables.Column{
	idColumn("old_id", "The old ATT&CK ID"),
	textColumn("new_id", "The ID that replaces it, '' when none does"),
	textColumn("kind", "revoked, deprecated or renumbered"),
	textColumn("object_type", "technique, group, software or mitigation"),
	textColumn("attack_version", "ATT&CK release in which the redirect took effect: 18.1 (from the bundle) or 19.0"),
}

func redirectsTable(kb *attack.KB) tables.Table {
	return tables.Table{
		Name: "attack_id_redirects",
		Description: "Old ATT&CK IDs and what replaced them: the revoked and deprecated objects of the v18.1 " +
			"bundle, and the 17 techniques v19 revoked (attack_version 19.0, e.g. T1562.001 -> T1685).",
		Columns: redirectColumns,
		Generate: func(ctx context.Context, q tables.QueryContext, emit tables.EmitFunc) error {
			row := make(tables.Row, len(redirectColumns))
			var rs []attack.IDRedirect
			if ids, ok := keys(q, "old_id"); ok {
				for _, id := range ids {
					for _, r := range kb.RedirectsFrom(id) {
						if r.OldID == id {
							rs = append(rs, r)
						}
					}
				}
			} else {
				rs = kb.Redirects()
			}
			return stream(ctx, len(rs), func(i int) bool {
				r := &rs[i]
				row[0], row[1], row[2], row[3], row[4] = r.OldID, r.NewID, r.Kind, r.ObjectType, r.AttackVersion
				return emit(row)
			})
		},
	}
}
