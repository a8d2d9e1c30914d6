// Package attacktables serves the MITRE ATT&CK knowledge base (package
// github.com/quarry-sec/quarry/attack) as tables: attack_techniques,
// attack_tactics, attack_technique_tactics, attack_mitigations,
// attack_technique_mitigations, attack_groups, attack_group_techniques,
// attack_software, attack_software_techniques and attack_id_redirects.
//
// Every key column used in joins is marked Index, and an equality constraint
// on it (= or IN) is answered by a map lookup instead of a scan: SQLite runs
// the inner table of a join once per outer row. Lookups match IDs exactly,
// as SQLite compares TEXT.
//
// Revoked and deprecated objects are rows too, flagged in the revoked and
// deprecated columns, so that old IDs still join; filter with
// "revoked = 0 AND deprecated = 0" for the current set.
package attacktables

import (
	"context"
	"strings"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/tables"
)

// ctxCheckEvery is how many rows pass between two looks at the context.
const ctxCheckEvery = 256

// Tables returns the ATT&CK tables served from kb.
func Tables(kb *attack.KB) []tables.Table {
	return []tables.Table{
		techniquesTable(kb),
		tacticsTable(kb),
		techniqueTacticsTable(kb),
		mitigationsTable(kb),
		relationTable(kb, mitigationRelation),
		groupsTable(kb),
		relationTable(kb, groupRelation),
		softwareTable(kb),
		relationTable(kb, softwareRelation),
		redirectsTable(kb),
	}
}

// stream calls emitAt for 0..n-1 until the consumer wants no more rows,
// watching ctx.
func stream(ctx context.Context, n int, emitAt func(i int) bool) error {
	for i := 0; i < n; i++ {
		if i%ctxCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if !emitAt(i) {
			return nil
		}
	}
	return nil
}

// keys returns the distinct values an equality constraint requires of the
// column, and whether there is such a constraint.
func keys(q tables.QueryContext, column string) ([]string, bool) {
	vals, ok := q.EqualStrings(column)
	if !ok {
		return nil, false
	}
	out := vals[:0:0]
	seen := make(map[string]bool, len(vals))
	for _, v := range vals {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out, true
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func join(ss []string) string { return strings.Join(ss, ",") }

// idColumn is a key column: marked Index so that both engines push its
// equality constraints down.
func idColumn(name, desc string) tables.Column {
	return tables.Column{Name: name, Type: tables.Text, Description: desc, Index: true}
}

func textColumn(name, desc string) tables.Column {
	return tables.Column{Name: name, Type: tables.Text, Description: desc}
}

func intColumn(name, desc string) tables.Column {
	return tables.Column{Name: name, Type: tables.Integer, Description: desc}
}
