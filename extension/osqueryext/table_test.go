package osqueryext

import (
	"context"
	"errors"
	"sync"

	"github.com/quarry-sec/quarry/tables"
)

// recorder is a test table that records every QueryContext it is given and
// emits fixed rows covering every type and NULL.
type recorder struct {
	mu   sync.Mutex
	got  []tables.QueryContext
	fail error
}

func (r *recorder) contexts() []tables.QueryContext {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]tables.QueryContext(nil), r.got...)
}

var recorderRows = []tables.Row{
	{"a", int64(1), int64(-2), 1.5, "alpha", nil, "r"},
	{"b", int64(9007199254740993), int64(0), nil, nil, "s", "r"},
	{"c", int64(-9223372036854775808), int64(2147483647), 1e21, "gamma, with \"quotes\"\n", "", "r"},
}

func recorderTable(r *recorder) tables.Table {
	return tables.Table{
		Name:        "quarry_test_recorder",
		Description: "records its query contexts",
		Columns: []tables.Column{
			{Name: "id", Type: tables.Text, Index: true},
			{Name: "n", Type: tables.BigInt, Additional: true},
			{Name: "i", Type: tables.Integer, Additional: true},
			{Name: "d", Type: tables.Double, Additional: true},
			{Name: "name", Type: tables.Text},
			{Name: "secret", Type: tables.Text, Hidden: true},
			{Name: "req", Type: tables.Text, Required: true},
		},
		Generate: func(ctx context.Context, q tables.QueryContext, emit tables.EmitFunc) error {
			r.mu.Lock()
			r.got = append(r.got, q)
			fail := r.fail
			r.mu.Unlock()
			if fail != nil {
				return fail
			}
			row := make(tables.Row, 7) // reused, as tables may do
			for _, src := range recorderRows {
				copy(row, src)
				if !emit(row) {
					return nil
				}
			}
			return ctx.Err()
		},
	}
}

var errBoom = errors.New("boom")

// numbersTable emits n rows of a process_events-like width, for benchmarks.
func numbersTable(n int) tables.Table {
	return tables.Table{
		Name: "quarry_test_numbers",
		Columns: []tables.Column{
			{Name: "pid", Type: tables.BigInt, Additional: true},
			{Name: "parent", Type: tables.BigInt},
			{Name: "path", Type: tables.Text},
			{Name: "cmdline", Type: tables.Text},
			{Name: "uid", Type: tables.BigInt},
			{Name: "time", Type: tables.BigInt, Additional: true},
			{Name: "cwd", Type: tables.Text},
			{Name: "host_identifier", Type: tables.Text},
		},
		Generate: func(ctx context.Context, _ tables.QueryContext, emit tables.EmitFunc) error {
			row := make(tables.Row, 8)
			for i := range n {
				row[0], row[1] = int64(1000+i), int64(1)
				row[2], row[3] = "/usr/bin/bash", "bash -c 'echo hello world'"
				row[4], row[5] = int64(1000), int64(1767225600+i)
				row[6], row[7] = "/home/analyst", "host-01.example.org"
				if !emit(row) {
					return nil
				}
			}
			return ctx.Err()
		},
	}
}
