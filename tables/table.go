// Package tables defines Quarry's engine-neutral table interface.
//
// A table is written once, as a Table value: its schema and a Generate
// function that receives the query's constraints and streams typed rows. The
// engine adapters in extension/ (the embedded SQLite engine and the osquery
// extension) translate their engine's constraints into a QueryContext and its
// rows back; they hold no table logic. Table families live in tables/<family>.
package tables

import (
	"context"
	"fmt"
)

// ColumnType is the SQL type of a column, named as osquery names it.
type ColumnType int

// The column types osquery knows.
const (
	Text ColumnType = iota
	Integer
	BigInt
	Double
)

// String returns the SQL name of the type (TEXT, INTEGER, BIGINT, DOUBLE).
func (t ColumnType) String() string {
	switch t {
	case Text:
		return "TEXT"
	case Integer:
		return "INTEGER"
	case BigInt:
		return "BIGINT"
	case Double:
		return "DOUBLE"
	}
	return fmt.Sprintf("ColumnType(%d)", int(t))
}

// Column describes one column of a table.
//
// The flags carry osquery's meaning: osqueryd forwards WHERE constraints to an
// extension only for columns marked Index or Additional; a Required column
// must be constrained with = (or IN) in every query; a Hidden column is left
// out of SELECT * but can be named.
type Column struct {
	Name        string
	Type        ColumnType
	Description string
	Index       bool
	Additional  bool
	Required    bool
	Hidden      bool
}

// Row is one row of a table: one value per column, in column order. Values are
// int64 for Integer and BigInt, float64 for Double, string for Text, or nil
// for SQL NULL.
//
// A Generate function may reuse one Row for every row it emits: the consumer
// reads it before emit returns and copies what it keeps.
type Row []any

// EmitFunc receives one row. It returns false when the consumer wants no more
// rows; Generate must then return promptly (with a nil error).
type EmitFunc func(Row) bool

// GenerateFunc streams the rows of a table that may satisfy the query's
// constraints. Constraints are hints: the engine re-checks every row, so a
// table may ignore a constraint it cannot use, but must never drop a row that
// satisfies all of them. It must watch ctx and return ctx.Err() when done.
type GenerateFunc func(ctx context.Context, q QueryContext, emit EmitFunc) error

// Table is one table: its schema and the function that generates its rows.
type Table struct {
	Name        string
	Description string
	Columns     []Column
	// RequiresOneOf names columns of which a query must constrain at least
	// one with = (or IN) — a table-valued table such as process_tree, asked
	// by pid or by incident. The embedded engine prices plans without one
	// out, so a join constrains the table from the other side.
	RequiresOneOf []string
	Generate      GenerateFunc
}

// ColumnIndex returns the position of the named column, or -1.
func (t *Table) ColumnIndex(name string) int {
	for i, c := range t.Columns {
		if c.Name == name {
			return i
		}
	}
	return -1
}

// Validate reports a table definition that no engine could serve.
func (t *Table) Validate() error {
	if t.Name == "" {
		return fmt.Errorf("table has no name")
	}
	if len(t.Columns) == 0 {
		return fmt.Errorf("table %s: no columns", t.Name)
	}
	if t.Generate == nil {
		return fmt.Errorf("table %s: no generate function", t.Name)
	}
	seen := make(map[string]bool, len(t.Columns))
	for _, c := range t.Columns {
		if c.Name == "" {
			return fmt.Errorf("table %s: a column has no name", t.Name)
		}
		if seen[c.Name] {
			return fmt.Errorf("table %s: column %s declared twice", t.Name, c.Name)
		}
		seen[c.Name] = true
		if c.Type < Text || c.Type > Double {
			return fmt.Errorf("table %s: column %s has unknown type %d", t.Name, c.Name, int(c.Type))
		}
	}
	return nil
}
