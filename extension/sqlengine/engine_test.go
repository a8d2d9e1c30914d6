package sqlengine

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/tables"
)

// numbers is a synthetic table of n rows: id, name ("n<id>"), half (id/2 as
// a double), parity ("even"/"odd"). It records the QueryContext of each call
// and, for an equality on id, emits only the matching row, as an indexed
// table does.
type numbers struct {
	n     int64
	mu    sync.Mutex
	calls []tables.QueryContext
}

func (nt *numbers) table() tables.Table {
	return tables.Table{
		Name:        "numbers",
		Description: "synthetic rows for tests",
		Columns: []tables.Column{
			{Name: "id", Type: tables.BigInt, Index: true},
			{Name: "name", Type: tables.Text},
			{Name: "half", Type: tables.Double},
			{Name: "parity", Type: tables.Text, Additional: true},
			{Name: "secret", Type: tables.Text, Hidden: true},
		},
		Generate: nt.generate,
	}
}

func (nt *numbers) generate(ctx context.Context, q tables.QueryContext, emit tables.EmitFunc) error {
	nt.mu.Lock()
	nt.calls = append(nt.calls, q)
	nt.mu.Unlock()
	lo, hi, _ := q.IntRange("id")
	lo, hi = max(lo, 0), min(hi, nt.n-1)
	row := make(tables.Row, 5)
	for i := lo; i <= hi; i++ {
		row[0] = i
		row[1] = "n" + strconv.FormatInt(i, 10)
		row[2] = float64(i) / 2
		if i%2 == 0 {
			row[3] = "even"
		} else {
			row[3] = "odd"
		}
		row[4] = "s"
		if !emit(row) {
			return nil
		}
	}
	return nil
}

func (nt *numbers) reset() []tables.QueryContext {
	nt.mu.Lock()
	defer nt.mu.Unlock()
	c := nt.calls
	nt.calls = nil
	return c
}

func newTestEngine(t testing.TB, extra ...tables.Table) (*Engine, *numbers) {
	t.Helper()
	nt := &numbers{n: 1000}
	reg := tables.NewRegistry(tables.WithTimeout(5 * time.Second))
	if err := reg.Register(append([]tables.Table{nt.table()}, extra...)...); err != nil {
		t.Fatal(err)
	}
	e, err := Open(reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, nt
}

func queryAll(t testing.TB, e *Engine, q string) [][]any {
	t.Helper()
	rows, err := e.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out [][]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out = append(out, vals)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return out
}

func TestScanAndTypes(t *testing.T) {
	e, _ := newTestEngine(t)
	got := queryAll(t, e, "SELECT count(*), sum(id), max(half) FROM numbers")
	if got[0][0] != int64(1000) || got[0][1] != int64(499500) || got[0][2] != 499.5 {
		t.Fatalf("aggregate = %v", got[0])
	}
	got = queryAll(t, e, "SELECT * FROM numbers ORDER BY id DESC LIMIT 2")
	if len(got) != 2 || len(got[0]) != 4 {
		t.Fatalf("SELECT * should give 2 rows of 4 columns (secret is hidden), got %v", got)
	}
	if got[0][0] != int64(999) || got[0][1] != "n999" || got[0][3] != "odd" {
		t.Fatalf("row = %v", got[0])
	}
	got = queryAll(t, e, "SELECT secret FROM numbers WHERE id = 3")
	if len(got) != 1 || got[0][0] != "s" {
		t.Fatalf("hidden column by name = %v", got)
	}
}

func TestPushdown(t *testing.T) {
	e, nt := newTestEngine(t)
	cases := []struct {
		sql   string
		want  []string // constraints of each Generate call, rendered
		nrows int
	}{
		{"SELECT name FROM numbers WHERE id = 7", []string{"id = 7"}, 1},
		{"SELECT name FROM numbers WHERE id > 10 AND id <= 20", []string{"id > 10;id <= 20"}, 10},
		{"SELECT name FROM numbers WHERE id IN (1, 5, 9)", []string{"id = 1", "id = 5", "id = 9"}, 3},
		// SQLite adds a case-insensitive range for a LIKE prefix.
		{"SELECT name FROM numbers WHERE parity LIKE 'ev%' AND id < 10", []string{"parity LIKE ev%;id < 10;parity >= EV;parity < ew"}, 5},
		{"SELECT name FROM numbers WHERE id >= 998", []string{"id >= 998"}, 2},
		{"SELECT name FROM numbers WHERE id + 0 = 7", []string{""}, 1},
	}
	for _, c := range cases {
		nt.reset()
		got := queryAll(t, e, c.sql)
		if len(got) != c.nrows {
			t.Errorf("%s: %d rows, want %d", c.sql, len(got), c.nrows)
		}
		calls := nt.reset()
		var rendered []string
		for _, q := range calls {
			var parts []string
			for _, k := range q.Constraints {
				parts = append(parts, k.String())
			}
			rendered = append(rendered, strings.Join(parts, ";"))
		}
		if !sameSet(rendered, c.want) {
			t.Errorf("%s: generate saw %q, want %q", c.sql, rendered, c.want)
		}
	}
}

// sameSet compares call lists ignoring the order of calls and of the terms
// within a call (SQLite chooses both).
func sameSet(got, want []string) bool {
	norm := func(xs []string) map[string]int {
		m := map[string]int{}
		for _, x := range xs {
			terms := strings.Split(x, ";")
			sortStrings(terms)
			m[strings.Join(terms, ";")]++
		}
		return m
	}
	g, w := norm(got), norm(want)
	if len(g) != len(w) {
		return false
	}
	for k, v := range w {
		if g[k] != v {
			return false
		}
	}
	return true
}

func sortStrings(xs []string) {
	for i := 1; i < len(xs); i++ {
		for j := i; j > 0 && xs[j] < xs[j-1]; j-- {
			xs[j], xs[j-1] = xs[j-1], xs[j]
		}
	}
}

func TestJoinPushesEqualityIntoInnerTable(t *testing.T) {
	e, nt := newTestEngine(t)
	nt.reset()
	got := queryAll(t, e, "SELECT a.id, b.name FROM numbers a JOIN numbers b ON b.id = a.id + 1 WHERE a.id < 5")
	if len(got) != 5 {
		t.Fatalf("join gave %d rows", len(got))
	}
	calls := nt.reset()
	eq := 0
	for _, q := range calls {
		for _, c := range q.Constraints {
			if c.Column == "id" && c.Op == tables.OpEQ {
				eq++
			}
		}
	}
	if eq != 5 {
		t.Fatalf("inner table should be looked up by id once per outer row (5), got %d equality calls of %d", eq, len(calls))
	}
}

func TestReadOnly(t *testing.T) {
	e, _ := newTestEngine(t)
	for _, q := range []string{
		"INSERT INTO numbers(id) VALUES (1)",
		"  /* comment */ delete from numbers",
		"CREATE TABLE t(x)",
		"DROP TABLE numbers",
		"ATTACH DATABASE '/tmp/x.db' AS x",
		"PRAGMA writable_schema = 1",
		"WITH x AS (SELECT 1) INSERT INTO numbers(id) SELECT * FROM x",
		"SELECT 1; DROP TABLE numbers",
	} {
		rows, err := e.Query(context.Background(), q)
		if err == nil {
			for rows.Next() {
			}
			err = rows.Err()
			rows.Close()
		}
		if !errors.Is(err, ErrReadOnly) {
			t.Errorf("%q: want a read-only refusal, got %v", q, err)
		}
	}
	// Reading pragmas still work.
	got := queryAll(t, e, "SELECT name FROM pragma_table_info('numbers') ORDER BY cid")
	if len(got) != 4 {
		t.Fatalf("table_info gave %v", got)
	}
}

func TestBadInput(t *testing.T) {
	e, _ := newTestEngine(t)
	_, err := e.Query(context.Background(), "SELECT * FROM numbres")
	if !errors.Is(err, ErrNoSuchTable) || !strings.Contains(err.Error(), "numbers") {
		t.Fatalf("unknown table: %v", err)
	}
	_, err = e.Query(context.Background(), "SELEC id FROM numbers")
	if err == nil || !strings.Contains(err.Error(), "syntax error") {
		t.Fatalf("invalid SQL: %v", err)
	}
}

func TestPanickingTableIsAnError(t *testing.T) {
	boom := tables.Table{
		Name:    "boom",
		Columns: []tables.Column{{Name: "x", Type: tables.Integer}},
		Generate: func(ctx context.Context, q tables.QueryContext, emit tables.EmitFunc) error {
			emit(tables.Row{int64(1)})
			panic("kaboom")
		},
	}
	e, _ := newTestEngine(t, boom)
	rows, err := e.Query(context.Background(), "SELECT x FROM boom")
	if err == nil {
		for rows.Next() {
		}
		err = rows.Err()
		rows.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "kaboom") {
		t.Fatalf("want the panic as an error, got %v", err)
	}
	// A query that reads no column still fails rather than miscounting.
	rows, err = e.Query(context.Background(), "SELECT count(*) FROM boom")
	if err == nil {
		for rows.Next() {
		}
		err = rows.Err()
		rows.Close()
	}
	if err == nil {
		t.Fatal("count(*) over a failing table should fail")
	}
	// The engine still works afterwards.
	if got := queryAll(t, e, "SELECT count(*) FROM numbers"); got[0][0] != int64(1000) {
		t.Fatal(got)
	}
}

func TestRequiredColumn(t *testing.T) {
	req := tables.Table{
		Name:    "lookup",
		Columns: []tables.Column{{Name: "key", Type: tables.Text, Required: true}, {Name: "v", Type: tables.Text}},
		Generate: func(ctx context.Context, q tables.QueryContext, emit tables.EmitFunc) error {
			keys, _ := q.EqualStrings("key")
			for _, k := range keys {
				if !emit(tables.Row{k, "value of " + k}) {
					return nil
				}
			}
			return nil
		},
	}
	e, _ := newTestEngine(t, req)
	if got := queryAll(t, e, "SELECT v FROM lookup WHERE key = 'a'"); len(got) != 1 || got[0][0] != "value of a" {
		t.Fatal(got)
	}
	_, err := e.Query(context.Background(), "SELECT v FROM lookup")
	if err == nil || !strings.Contains(err.Error(), "requires a WHERE constraint key") {
		t.Fatalf("missing required constraint: %v", err)
	}
}

func TestTimeout(t *testing.T) {
	slow := tables.Table{
		Name:    "slow",
		Columns: []tables.Column{{Name: "x", Type: tables.Integer}},
		Generate: func(ctx context.Context, q tables.QueryContext, emit tables.EmitFunc) error {
			<-ctx.Done()
			return ctx.Err()
		},
	}
	nt := &numbers{n: 10}
	reg := tables.NewRegistry(tables.WithTimeout(50 * time.Millisecond))
	if err := reg.Register(nt.table(), slow); err != nil {
		t.Fatal(err)
	}
	e, err := Open(reg)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	_, err = e.Query(context.Background(), "SELECT x FROM slow")
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("want a timeout error, got %v", err)
	}
}

func TestSyntaxErrorPosition(t *testing.T) {
	e, _ := newTestEngine(t)
	cases := []struct {
		sql       string
		line, col int
		near      string
	}{
		{"SELEC id FROM numbers", 1, 1, "SELEC"},
		{"SELECT id\nFROM numbers\nWHERE id = = 3", 3, 12, "="},
		{"SELECT id FROM numbers WHERE (id = 3", 1, 37, ""},
	}
	for _, c := range cases {
		_, err := e.Query(context.Background(), c.sql)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Fatalf("%q: want a SyntaxError, got %v", c.sql, err)
		}
		if se.Line != c.line || se.Column != c.col || se.Near != c.near {
			t.Errorf("%q: got line %d col %d near %q (%v), want %d:%d %q", c.sql, se.Line, se.Column, se.Near, se, c.line, c.col, c.near)
		}
	}
}

// TestOrQueries: SQLite answers an OR of indexable terms by running Filter
// once per term and merging by rowid; rows must not be lost or doubled.
func TestOrQueries(t *testing.T) {
	e, _ := newTestEngine(t)
	cases := map[string]int64{
		"id < 10 OR id > 995":                      14,
		"id = 5 OR id = 7 OR id = 5":               2,
		"parity LIKE 'ev%' OR id = 3":              501,
		"id IN (1, 2) OR (id >= 500 AND id < 503)": 5,
		"(id < 3 OR id > 997) AND parity = 'even'": 3,
		"name LIKE 'n99%' OR name LIKE 'n98%'":     22,
	}
	for where, want := range cases {
		got := queryAll(t, e, "SELECT count(*) FROM numbers WHERE "+where)
		if got[0][0] != want {
			t.Errorf("%s: %v rows, want %d", where, got[0][0], want)
		}
	}
}

// A caller's cancellation and deadline reach a table's Generate: a table that
// only returns when its context is done ends the statement with the caller's
// error, well before the registry's own timeout.
func TestCallerCancellationReachesTables(t *testing.T) {
	started := make(chan struct{}, 4)
	var missed atomic.Int32
	blocking := tables.Table{
		Name:    "blocking",
		Columns: []tables.Column{{Name: "x", Type: tables.Integer}},
		Generate: func(ctx context.Context, q tables.QueryContext, emit tables.EmitFunc) error {
			started <- struct{}{}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Second):
				missed.Add(1)
				return errors.New("the caller's context never reached the table")
			}
		},
	}
	nt := &numbers{n: 10}
	reg := tables.NewRegistry(tables.WithTimeout(2 * time.Minute))
	if err := reg.Register(nt.table(), blocking); err != nil {
		t.Fatal(err)
	}
	e, err := Open(reg, WithMaxConnections(1))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()

	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := e.Query(ctx, "SELECT x FROM blocking")
		if !errors.Is(err, context.DeadlineExceeded) && (err == nil || !strings.Contains(err.Error(), "deadline")) {
			t.Fatalf("want the deadline's error, got %v", err)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-started; cancel() }()
		_, err := e.Query(ctx, "SELECT x FROM blocking")
		if err == nil || !(errors.Is(err, context.Canceled) || strings.Contains(err.Error(), "cancel")) {
			t.Fatalf("want the cancellation's error, got %v", err)
		}
	})
	if n := missed.Load(); n > 0 {
		t.Fatalf("%d statements' contexts did not reach the table", n)
	}
	// The one connection went back to the pool, and a later statement runs
	// with its own context, not the cancelled one.
	if got := queryAll(t, e, "SELECT count(*) FROM numbers"); len(got) != 1 || got[0][0] != int64(10) {
		t.Fatalf("after cancellation: %v", got)
	}
}

// An unknown column is located in the query and answered with the closest
// columns of the tables the query names.
func TestUnknownColumn(t *testing.T) {
	e, _ := newTestEngine(t)
	_, err := e.Query(context.Background(), "SELECT id,\n  nmae FROM numbers")
	if !errors.Is(err, ErrNoSuchColumn) {
		t.Fatalf("want ErrNoSuchColumn, got %v", err)
	}
	var se *SyntaxError
	if !errors.As(err, &se) || se.Line != 2 || se.Column != 3 || !strings.Contains(err.Error(), "did you mean name") {
		t.Fatalf("want line 2, column 3 and a suggestion of name: %v (%+v)", err, se)
	}
}

// A table that must be asked by one of some columns (RequiresOneOf) is
// constrained from the other side of a join, whatever the join's order.
func TestRequiresOneOfJoin(t *testing.T) {
	lookup := tables.Table{
		Name:          "lookup",
		Columns:       []tables.Column{{Name: "id", Type: tables.BigInt, Index: true}, {Name: "double", Type: tables.BigInt}},
		RequiresOneOf: []string{"id"},
		Generate: func(ctx context.Context, q tables.QueryContext, emit tables.EmitFunc) error {
			v, ok := q.Equals("id")
			if !ok {
				return errors.New("lookup needs WHERE id = …")
			}
			for _, x := range v {
				id := x.(int64)
				emit(tables.Row{id, 2 * id})
			}
			return nil
		},
	}
	e, _ := newTestEngine(t, lookup)
	got := queryAll(t, e, "SELECT n.id, l.double FROM lookup l JOIN numbers n ON l.id = n.id WHERE n.id < 3 ORDER BY l.double")
	if len(got) != 3 || got[2][1] != int64(4) {
		t.Fatalf("join: %v", got)
	}
}

func TestUsedColumnsReachTheTable(t *testing.T) {
	e, nt := newTestEngine(t)
	cases := []struct {
		query string
		want  []string
	}{
		{"SELECT name FROM numbers WHERE parity = 'odd'", []string{"name", "parity"}},
		{"SELECT count(*) FROM numbers", nil},
		{"SELECT * FROM numbers WHERE id = 3", []string{"half", "id", "name", "parity"}},
	}
	for _, c := range cases {
		nt.reset()
		queryAll(t, e, c.query)
		calls := nt.reset()
		if len(calls) == 0 {
			t.Fatalf("%s: no Generate call", c.query)
		}
		var got []string
		for name := range calls[0].UsedColumns {
			got = append(got, name)
		}
		sortStrings(got)
		if calls[0].UsedColumns == nil || strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("%s: used columns %v (nil map: %v), want %v", c.query, got, calls[0].UsedColumns == nil, c.want)
		}
	}
}
