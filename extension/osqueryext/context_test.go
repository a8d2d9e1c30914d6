package osqueryext

import (
	"reflect"
	"strings"
	"testing"

	"github.com/quarry-sec/quarry/tables"
)

func TestParseContext(t *testing.T) {
	tbl := recorderTable(&recorder{})
	cases := []struct {
		name string
		json string
		want []tables.Constraint
		used map[string]bool
	}{
		{
			name: "text equality (the issue's example)",
			json: `{"constraints":[{"name":"id","list":[{"op":2,"expr":"T1003.001"}],"affinity":"TEXT"}]}`,
			want: []tables.Constraint{{Column: "id", Op: tables.OpEQ, Value: "T1003.001"}},
		},
		{
			name: "several = on one column become one IN, in order",
			json: `{"constraints":[{"name":"id","list":[{"op":2,"expr":"b"},{"op":2,"expr":"a"},{"op":2,"expr":"c"}],"affinity":"TEXT"}]}`,
			want: []tables.Constraint{{Column: "id", Op: tables.OpIN, Values: []any{"b", "a", "c"}}},
		},
		{
			name: "op 3 reads as one more value of the IN",
			json: `{"constraints":[{"name":"n","list":[{"op":3,"expr":"1"},{"op":2,"expr":"2"}],"affinity":"BIGINT"}]}`,
			want: []tables.Constraint{{Column: "n", Op: tables.OpIN, Values: []any{int64(1), int64(2)}}},
		},
		{
			name: "typed by affinity; ranges keep their order around the merged =",
			json: `{"constraints":[
				{"name":"id","list":[],"affinity":"TEXT"},
				{"name":"n","list":[{"op":32,"expr":"10"},{"op":2,"expr":"12"},{"op":16,"expr":"20"},{"op":2,"expr":"13"}],"affinity":"BIGINT"},
				{"name":"i","list":[{"op":4,"expr":"-3"},{"op":8,"expr":"2.5"}],"affinity":"INTEGER"},
				{"name":"d","list":[{"op":2,"expr":"1.25"}],"affinity":"DOUBLE"},
				{"name":"name","list":[{"op":65,"expr":"%mimi%"}],"affinity":"TEXT"}]}`,
			want: []tables.Constraint{
				{Column: "n", Op: tables.OpGE, Value: int64(10)},
				{Column: "n", Op: tables.OpIN, Values: []any{int64(12), int64(13)}},
				{Column: "n", Op: tables.OpLT, Value: int64(20)},
				{Column: "i", Op: tables.OpGT, Value: int64(-3)},
				{Column: "i", Op: tables.OpLE, Value: 2.5},
				{Column: "d", Op: tables.OpEQ, Value: 1.25},
				{Column: "name", Op: tables.OpLIKE, Value: "%mimi%"},
			},
		},
		{
			name: "a number that does not parse stays text; int beyond int64 is a float",
			json: `{"constraints":[{"name":"n","list":[{"op":2,"expr":"abc"}],"affinity":"BIGINT"},
				{"name":"i","list":[{"op":4,"expr":"18446744073709551615"}],"affinity":"UNSIGNED BIGINT"}]}`,
			want: []tables.Constraint{
				{Column: "n", Op: tables.OpEQ, Value: "abc"},
				{Column: "i", Op: tables.OpGT, Value: float64(18446744073709551615)},
			},
		},
		{
			name: "no affinity: the column's type; stringy op of osquery < 3",
			json: `{"constraints":[{"name":"n","list":[{"op":"2","expr":"7"}]}]}`,
			want: []tables.Constraint{{Column: "n", Op: tables.OpEQ, Value: int64(7)}},
		},
		{
			name: "GLOB, REGEXP, MATCH and unknown columns are dropped; empty list as string",
			json: `{"constraints":[{"name":"name","list":[{"op":66,"expr":"a*"},{"op":67,"expr":"^a"},{"op":64,"expr":"x"}],"affinity":"TEXT"},
				{"name":"nope","list":[{"op":2,"expr":"x"}],"affinity":"TEXT"},
				{"name":"id","list":"","affinity":"TEXT"}]}`,
			want: nil,
		},
		{
			name: "colsUsed sets UsedColumns",
			json: `{"constraints":[],"colsUsed":["id","d"],"colsUsedBitset":9}`,
			used: map[string]bool{"id": true, "d": true},
		},
		{
			name: "empty colsUsed (count(*)) uses no column",
			json: `{"constraints":[],"colsUsed":[]}`,
			used: map[string]bool{},
		},
		{name: "empty context", json: ``},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q, err := ParseContext(&tbl, c.json)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(q.Constraints, c.want) {
				t.Errorf("constraints\n got %v\nwant %v", q.Constraints, c.want)
			}
			if !reflect.DeepEqual(q.UsedColumns, c.used) {
				t.Errorf("used columns: got %v, want %v", q.UsedColumns, c.used)
			}
		})
	}
}

func TestParseContextErrors(t *testing.T) {
	tbl := recorderTable(&recorder{})
	for _, bad := range []string{
		`{"constraints":`,
		`{"constraints":[{"name":"id","list":{"op":2},"affinity":"TEXT"}]}`,
		`{"constraints":[{"name":"id","list":[{"op":"eq","expr":"a"}],"affinity":"TEXT"}]}`,
		`{"constraints":[{"name":"id","list":[{"op":2,"expr":5}],"affinity":"TEXT"}]}`,
	} {
		if _, err := ParseContext(&tbl, bad); err == nil || !strings.Contains(err.Error(), "query context") {
			t.Errorf("ParseContext(%s) = %v, want a query context error", bad, err)
		}
	}
}

func FuzzParseContext(f *testing.F) {
	f.Add(`{"constraints":[{"name":"id","list":[{"op":2,"expr":"T1003.001"}],"affinity":"TEXT"}]}`)
	f.Add(`{"constraints":[{"name":"n","list":[{"op":2,"expr":"1"},{"op":2,"expr":"x"}],"affinity":"BIGINT"}],"colsUsed":["n"]}`)
	tbl := recorderTable(&recorder{})
	f.Fuzz(func(t *testing.T, s string) {
		q, err := ParseContext(&tbl, s)
		if err != nil {
			return
		}
		for _, c := range q.Constraints {
			if tbl.ColumnIndex(c.Column) < 0 {
				t.Fatalf("constraint on unknown column %q", c.Column)
			}
			if c.Op == tables.OpIN && len(c.Values) < 2 {
				t.Fatalf("IN with %d values", len(c.Values))
			}
		}
	})
}
