package sqlite

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
