package attacktables

import (
	"context"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/tables"
)

var tacticColumns = []tables.Column{
	idColumn("id", "Tactic ID, e.g. TA0002 (TA0005 has two rows: defense-evasion in 18.1, stealth in 19.0)"),
	idColumn("shortname", "Tactic shortname, as in SigmaHQ tags: execution, stealth, defense-impairment"),
	textColumn("name", "Tactic name"),
	intColumn("matrix_order", "Column in the matrix of the row's attack_version: 1..14 for 18.1"),
	textColumn("description", "Tactic description"),
	textColumn("url", "attack.attack.org page"),
	textColumn("attack_version", "ATT&CK release the row comes from: 18.1, or 19.0 for stealth and defense-impairment"),
	intColumn("matrix_order_v19", "Column in the v19 matrix (1..15), 0 for a tactic v19 dropped (defense-evasion)"),
	intColumn("deprecated", "1 when deprecated"),
}

func tacticsTable(kb *attack.KB) tables.Table {
	return tables.Table{
		Name: "attack_tactics",
		Description: "MITRE ATT&CK Enterprise tactics: the 14 of v18.1 (matrix_order 1..14), plus v19's stealth " +
			"(TA0005 renamed) and defense-impairment (TA0112) with attack_version 19.0. " +
			"ORDER BY matrix_order_v19 WHERE matrix_order_v19 > 0 gives the 15 tactics of v19.",
		Columns: tacticColumns,
		Generate: func(ctx context.Context, q tables.QueryContext, emit tables.EmitFunc) error {
			row := make(tables.Row, len(tacticColumns))
			send := func(t *attack.Tactic) bool {
				row[0], row[1], row[2] = t.ID, t.ShortName, t.Name
				row[3] = int64(t.MatrixOrder)
				row[4], row[5], row[6] = t.Description, t.URL, t.AttackVersion
				row[7] = int64(t.MatrixOrderV19)
				row[8] = boolInt(t.Deprecated)
				return emit(row)
			}
			if ids, ok := keys(q, "id"); ok {
				var hits []*attack.Tactic
				for _, id := range ids {
					for _, t := range kb.TacticsByID(id) {
						if t.ID == id {
							hits = append(hits, t)
						}
					}
				}
				return stream(ctx, len(hits), func(i int) bool { return send(hits[i]) })
			}
			if names, ok := keys(q, "shortname"); ok {
				return stream(ctx, len(names), func(i int) bool {
					t, found := kb.Tactic(names[i])
					if !found || t.ShortName != names[i] {
						return true
					}
					return send(t)
				})
			}
			all := kb.AllTactics()
			return stream(ctx, len(all), func(i int) bool { return send(&all[i]) })
		},
	}
}

var techniqueTacticColumns = []tables.Column{
	idColumn("technique_id", "Technique ID"),
	idColumn("tactic_id", "Tactic ID"),
	idColumn("tactic", "Tactic shortname"),
	textColumn("attack_version", "First ATT&CK release holding the pair: 18.1, or 19.0 for a pair only v19 has"),
	intColumn("in_v19", "1 when ATT&CK v19 holds the pair"),
}

func techniqueTacticsTable(kb *attack.KB) tables.Table {
	return tables.Table{
		Name: "attack_technique_tactics",
		Description: "One row per technique/tactic pair, for joins: every v18.1 pair, plus each pair only v19 has " +
			"(attack_version 19.0), so that tactic = 'stealth' or 'defense-impairment' finds v19's techniques.",
		Columns: techniqueTacticColumns,
		Generate: func(ctx context.Context, q tables.QueryContext, emit tables.EmitFunc) error {
			row := make(tables.Row, len(techniqueTacticColumns))
			send := func(p *attack.TechniqueTactic) bool {
				row[0], row[1], row[2], row[3] = p.TechniqueID, p.TacticID, p.Tactic, p.AttackVersion
				row[4] = boolInt(p.InV19)
				return emit(row)
			}
			pairs, keyed := techniqueTacticPairs(kb, q)
			if !keyed {
				pairs = kb.TechniqueTactics()
			}
			return stream(ctx, len(pairs), func(i int) bool { return send(&pairs[i]) })
		},
	}
}

// techniqueTacticPairs returns the pairs an equality constraint on a key
// column selects, and whether there was one.
func techniqueTacticPairs(kb *attack.KB, q tables.QueryContext) ([]attack.TechniqueTactic, bool) {
	var out []attack.TechniqueTactic
	if ids, ok := keys(q, "technique_id"); ok {
		for _, id := range ids {
			for _, p := range kb.TechniqueTacticsOf(id) {
				if p.TechniqueID == id {
					out = append(out, p)
				}
			}
		}
		return out, true
	}
	if ids, ok := keys(q, "tactic_id"); ok {
		for _, id := range ids {
			for _, p := range kb.TechniqueTacticsByTacticID(id) {
				if p.TacticID == id {
					out = append(out, p)
				}
			}
		}
		return out, true
	}
	if names, ok := keys(q, "tactic"); ok {
		for _, name := range names {
			t, found := kb.Tactic(name)
			if !found {
				continue
			}
			for _, p := range kb.TechniqueTacticsByTacticID(t.ID) {
				if p.Tactic == name {
					out = append(out, p)
				}
			}
		}
		return out, true
	}
	return nil, false
}
