package sqlengine

import (
	"context"
	"testing"

	"github.com/quarry-sec/quarry/tables"
)

// benchEngine serves a synthetic table of 1M rows.
func benchEngine(b *testing.B) *Engine {
	nt := &numbers{n: 1_000_000}
	reg := tables.NewRegistry()
	if err := reg.Register(nt.table()); err != nil {
		b.Fatal(err)
	}
	e, err := Open(reg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close() })
	return e
}

func benchQuery(b *testing.B, e *Engine, q string, want int64) {
	b.Helper()
	for b.Loop() {
		var n int64
		rows, err := e.Query(context.Background(), q)
		if err != nil {
			b.Fatal(err)
		}
		for rows.Next() {
			if err := rows.Scan(&n); err != nil {
				b.Fatal(err)
			}
		}
		if err := rows.Err(); err != nil {
			b.Fatal(err)
		}
		rows.Close()
		if n != want {
			b.Fatalf("%s = %d, want %d", q, n, want)
		}
	}
}

// BenchmarkScan1M reads every row and column of a 1M-row table.
func BenchmarkScan1M(b *testing.B) {
	e := benchEngine(b)
	benchQuery(b, e, "SELECT count(*) FROM numbers WHERE name IS NOT NULL AND half >= 0 AND parity IS NOT NULL", 1_000_000)
}

// BenchmarkSelectivePushedDown: the constraint on id reaches Generate, which
// emits one row.
func BenchmarkSelectivePushedDown(b *testing.B) {
	e := benchEngine(b)
	benchQuery(b, e, "SELECT count(*) FROM numbers WHERE id = 765432", 1)
}

// BenchmarkSelectiveNotPushedDown: the same selection written so SQLite
// cannot push it down (id + 0), so all 1M rows are generated and filtered.
func BenchmarkSelectiveNotPushedDown(b *testing.B) {
	e := benchEngine(b)
	benchQuery(b, e, "SELECT count(*) FROM numbers WHERE id + 0 = 765432", 1)
}

// BenchmarkEngineOverhead1M isolates the engine: a table that emits one
// prebuilt row a million times (no allocation in the table), read by
// count(*) and by reading every column.
func BenchmarkEngineOverhead1M(b *testing.B) {
	row := tables.Row{int64(7), "name-7", 3.5, "odd"}
	fixed := tables.Table{
		Name: "fixed",
		Columns: []tables.Column{
			{Name: "id", Type: tables.BigInt}, {Name: "name", Type: tables.Text},
			{Name: "half", Type: tables.Double}, {Name: "parity", Type: tables.Text},
		},
		Generate: func(ctx context.Context, q tables.QueryContext, emit tables.EmitFunc) error {
			for i := 0; i < 1_000_000; i++ {
				if !emit(row) {
					return nil
				}
			}
			return nil
		},
	}
	reg := tables.NewRegistry()
	if err := reg.Register(fixed); err != nil {
		b.Fatal(err)
	}
	e, err := Open(reg)
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	b.Run("count", func(b *testing.B) { benchQuery(b, e, "SELECT count(*) FROM fixed", 1_000_000) })
	b.Run("all-columns", func(b *testing.B) {
		benchQuery(b, e, "SELECT count(*) FROM fixed WHERE id > 0 AND name IS NOT NULL AND half > 0 AND parity IS NOT NULL", 1_000_000)
	})
}
