package attacktables

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"testing"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/tables"
)

func kbTables(t testing.TB) map[string]tables.Table {
	t.Helper()
	kb, err := attack.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]tables.Table)
	for _, tb := range Tables(kb) {
		out[tb.Name] = tb
	}
	return out
}

// rows runs a table and returns copies of its rows as maps by column name.
func rows(t testing.TB, tb tables.Table, cs ...tables.Constraint) []map[string]any {
	t.Helper()
	var out []map[string]any
	err := tb.Generate(context.Background(), tables.QueryContext{Constraints: cs}, func(r tables.Row) bool {
		if len(r) != len(tb.Columns) {
			t.Fatalf("%s: row has %d values, want %d", tb.Name, len(r), len(tb.Columns))
		}
		m := make(map[string]any, len(r))
		for i, c := range tb.Columns {
			m[c.Name] = r[i]
		}
		out = append(out, m)
		return true
	})
	if err != nil {
		t.Fatalf("%s: %v", tb.Name, err)
	}
	return out
}

func count(rs []map[string]any, pred func(map[string]any) bool) int {
	n := 0
	for _, r := range rs {
		if pred(r) {
			n++
		}
	}
	return n
}

func TestTablesSchema(t *testing.T) {
	want := map[string][]string{
		"attack_techniques": {"id", "name", "tactics", "platforms", "is_subtechnique", "parent_id", "description",
			"detection", "data_components", "url", "version", "deprecated", "revoked", "replaced_by", "attack_version"},
		"attack_tactics":               {"id", "shortname", "name", "matrix_order", "description", "url", "attack_version"},
		"attack_technique_tactics":     {"technique_id", "tactic_id", "tactic"},
		"attack_mitigations":           {"id", "name", "description", "url"},
		"attack_technique_mitigations": {"technique_id", "mitigation_id", "description"},
		"attack_groups":                {"id", "name", "aliases", "description", "url"},
		"attack_group_techniques":      {"group_id", "technique_id", "description"},
		"attack_software":              {"id", "name", "type", "aliases", "platforms", "description", "url"},
		"attack_software_techniques":   {"software_id", "technique_id", "description"},
		"attack_id_redirects":          {"old_id", "new_id", "kind"},
	}
	ts := kbTables(t)
	if len(ts) != len(want) {
		t.Errorf("%d tables, want %d", len(ts), len(want))
	}
	keyCols := map[string]bool{"id": true, "technique_id": true, "mitigation_id": true, "group_id": true,
		"software_id": true, "tactic_id": true, "old_id": true}
	for name, cols := range want {
		tb, ok := ts[name]
		if !ok {
			t.Errorf("table %s missing", name)
			continue
		}
		if err := tb.Validate(); err != nil {
			t.Error(err)
		}
		for _, c := range cols {
			i := tb.ColumnIndex(c)
			if i < 0 {
				t.Errorf("%s: column %s missing", name, c)
				continue
			}
			if keyCols[c] && !tb.Columns[i].Index {
				t.Errorf("%s.%s is not marked Index", name, c)
			}
		}
	}
	reg := tables.NewRegistry()
	kb, _ := attack.Embedded()
	if err := reg.Register(Tables(kb)...); err != nil {
		t.Fatal(err)
	}
}

func TestTableCounts(t *testing.T) {
	ts := kbTables(t)
	live := func(r map[string]any) bool { return r["revoked"] == int64(0) && r["deprecated"] == int64(0) }
	v18 := func(r map[string]any) bool { return r["attack_version"] == "18.1" }

	techs := rows(t, ts["attack_techniques"])
	if n := count(techs, func(r map[string]any) bool { return live(r) && v18(r) }); n != 691 {
		t.Errorf("%d live v18.1 techniques, want 691", n)
	}
	if n := count(techs, func(r map[string]any) bool { return live(r) && v18(r) && r["is_subtechnique"] == int64(1) }); n != 475 {
		t.Errorf("%d live sub-techniques, want 475", n)
	}
	if n := count(techs, func(r map[string]any) bool { return live(r) && v18(r) && r["parent_id"] == "" }); n != 216 {
		t.Errorf("%d live parent techniques, want 216", n)
	}
	if n := count(techs, func(r map[string]any) bool { return r["attack_version"] == "19.0" }); n != 23 {
		t.Errorf("%d v19-only techniques, want 23", n)
	}

	tacs := rows(t, ts["attack_tactics"])
	var orders []int64
	var first, last string
	for _, r := range tacs {
		if v18(r) {
			orders = append(orders, r["matrix_order"].(int64))
			switch r["matrix_order"] {
			case int64(1):
				first = r["shortname"].(string)
			case int64(14):
				last = r["shortname"].(string)
			}
		}
	}
	sort.Slice(orders, func(i, j int) bool { return orders[i] < orders[j] })
	if len(orders) != 14 || orders[0] != 1 || orders[13] != 14 || first != "reconnaissance" || last != "impact" {
		t.Errorf("v18.1 tactics orders %v, first %s, last %s", orders, first, last)
	}
	if n := count(tacs, func(r map[string]any) bool { return r["matrix_order_v19"].(int64) > 0 }); n != 15 {
		t.Errorf("%d v19 tactics, want 15", n)
	}

	for name, want := range map[string]int{"attack_mitigations": 44, "attack_groups": 172, "attack_software": 784} {
		if n := count(rows(t, ts[name]), live); n != want {
			t.Errorf("%s: %d live rows, want %d", name, n, want)
		}
	}
	redirs := rows(t, ts["attack_id_redirects"])
	if n := count(redirs, func(r map[string]any) bool { return r["attack_version"] == "19.0" }); n != 17 {
		t.Errorf("%d v19 redirects, want 17", n)
	}
}

func TestV19Rows(t *testing.T) {
	ts := kbTables(t)
	eq := func(col, v string) tables.Constraint {
		return tables.Constraint{Column: col, Op: tables.OpEQ, Value: v}
	}
	r := rows(t, ts["attack_techniques"], eq("id", "T1685"))
	if len(r) != 1 || r[0]["attack_version"] != "19.0" || r[0]["tactics"] != "defense-impairment" || r[0]["is_subtechnique"] != int64(0) {
		t.Errorf("T1685 = %v", r)
	}
	r = rows(t, ts["attack_techniques"], eq("id", "T1562.001"))
	if len(r) != 1 || r[0]["replaced_by_v19"] != "T1685" || r[0]["revoked"] != int64(0) {
		t.Errorf("T1562.001 = %v", r)
	}
	for old, want := range map[string]string{"T1562.001": "T1685", "T1656": "T1684.001"} {
		r = rows(t, ts["attack_id_redirects"], eq("old_id", old))
		if len(r) != 1 || r[0]["new_id"] != want || r[0]["kind"] != "revoked" {
			t.Errorf("redirect %s = %v", old, r)
		}
	}
	stealth := rows(t, ts["attack_technique_tactics"], eq("tactic", "stealth"))
	if !slices.ContainsFunc(stealth, func(r map[string]any) bool { return r["technique_id"] == "T1027" && r["tactic_id"] == "TA0005" }) {
		t.Error("tactic = stealth does not find T1027")
	}
	for _, r := range stealth {
		if r["tactic"] != "stealth" {
			t.Fatalf("tactic = stealth returned %v", r)
		}
	}
	if r := rows(t, ts["attack_tactics"], eq("shortname", "defense-impairment")); len(r) != 1 || r[0]["id"] != "TA0112" {
		t.Errorf("defense-impairment = %v", r)
	}
	if r := rows(t, ts["attack_tactics"], eq("id", "TA0005")); len(r) != 2 {
		t.Errorf("TA0005 has %d rows, want 2 (defense-evasion 18.1, stealth 19.0)", len(r))
	}
}

// TestEqualityLookups checks that every key column's lookup gives exactly
// the rows a full scan gives for the key.
func TestEqualityLookups(t *testing.T) {
	ts := kbTables(t)
	cases := []struct {
		table, col string
		keys       []string
	}{
		{"attack_techniques", "id", []string{"T1059.001", "T1685", "T1143", "t1059.001", "T9999"}},
		{"attack_tactics", "id", []string{"TA0005", "TA0002", "ta0002"}},
		{"attack_tactics", "shortname", []string{"stealth", "execution", "defense-evasion", "Execution"}},
		{"attack_technique_tactics", "technique_id", []string{"T1027", "T1685.005", "T1059.001"}},
		{"attack_technique_tactics", "tactic_id", []string{"TA0005", "TA0112", "TA0043"}},
		{"attack_technique_tactics", "tactic", []string{"stealth", "defense-evasion", "impact"}},
		{"attack_mitigations", "id", []string{"M1036", "M1038", "m1036"}},
		{"attack_technique_mitigations", "technique_id", []string{"T1059.001", "T1003"}},
		{"attack_technique_mitigations", "mitigation_id", []string{"M1038", "M1026"}},
		{"attack_groups", "id", []string{"G0007", "G0016"}},
		{"attack_group_techniques", "group_id", []string{"G0007", "G0016"}},
		{"attack_group_techniques", "technique_id", []string{"T1059.001", "T1566.001"}},
		{"attack_software", "id", []string{"S0002", "S0367"}},
		{"attack_software_techniques", "software_id", []string{"S0002", "S0367"}},
		{"attack_software_techniques", "technique_id", []string{"T1003.001"}},
		{"attack_id_redirects", "old_id", []string{"T1562.001", "T1143", "T1099"}},
	}
	for _, c := range cases {
		tb := ts[c.table]
		all := rows(t, tb)
		for _, key := range c.keys {
			var want []string
			for _, r := range all {
				if r[c.col] == key {
					want = append(want, fmt.Sprint(r))
				}
			}
			var got []string
			for _, r := range rows(t, tb, tables.Constraint{Column: c.col, Op: tables.OpEQ, Value: key}) {
				got = append(got, fmt.Sprint(r))
			}
			sort.Strings(want)
			sort.Strings(got)
			if !slices.Equal(got, want) {
				t.Errorf("%s %s = %s: %d rows, full scan has %d", c.table, c.col, key, len(got), len(want))
			}
		}
		// IN with a repeated value gives each row once.
		in := tables.Constraint{Column: c.col, Op: tables.OpIN, Values: []any{c.keys[0], c.keys[0], nil, int64(5)}}
		single := rows(t, tb, tables.Constraint{Column: c.col, Op: tables.OpEQ, Value: c.keys[0]})
		if got := rows(t, tb, in); len(got) != len(single) {
			t.Errorf("%s %s IN (%s, %s): %d rows, want %d", c.table, c.col, c.keys[0], c.keys[0], len(got), len(single))
		}
	}
}

func TestGenerateStopsAndWatchesContext(t *testing.T) {
	for _, tb := range kbTables(t) {
		n := 0
		err := tb.Generate(context.Background(), tables.QueryContext{}, func(tables.Row) bool {
			n++
			return false
		})
		if err != nil || n != 1 {
			t.Errorf("%s: after emit returned false: %d rows, err %v", tb.Name, n, err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err = tb.Generate(ctx, tables.QueryContext{}, func(tables.Row) bool { return true })
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s: cancelled context gave %v", tb.Name, err)
		}
	}
}

func BenchmarkTechniqueLookup(b *testing.B) {
	tb := kbTables(b)["attack_techniques"]
	q := tables.QueryContext{Constraints: []tables.Constraint{{Column: "id", Op: tables.OpEQ, Value: "T1059.001"}}}
	for b.Loop() {
		tb.Generate(context.Background(), q, func(tables.Row) bool { return true })
	}
}
