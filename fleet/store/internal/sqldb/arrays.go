package sqldb

import (
	"fmt"
	"strconv"
	"strings"
)

// Column types of the rows of a multi-row statement (see rowSource).
const (
	colText   = "TEXT"
	colBigint = "BIGINT"
)

// rowSource returns the rows args (len(types) values a row, in the
// column's type: string for colText, int or int64 for colBigint) as a
// query's source of rows, columns column1, column2…, and its arguments.
//
// With Dialect.Arrays it is one statement text whatever the row count:
// "SELECT * FROM unnest(CAST(? AS TEXT[]), …) AS u (column1, …)", an array
// per column. PostgreSQL parses, and plans, a statement text once per
// connection: with VALUES every row count was a statement of its own
// (hundreds of them among the hot writes), parsed and planned anew on
// each of the writer's connections, its text built and hashed by the
// server at every call. Otherwise it is "VALUES (CAST(? AS TEXT), …), …",
// a group of placeholders a row.
func (db *DB) rowSource(types []string, args []any) (string, []any, error) {
	if len(types) == 0 || len(args)%len(types) != 0 {
		return "", nil, fmt.Errorf("row source: %d values for %d columns", len(args), len(types))
	}
	n := len(args) / len(types)
	var b strings.Builder
	if !db.d.Arrays {
		group := make([]string, len(types))
		for i, t := range types {
			group[i] = "CAST(? AS " + t + ")"
		}
		row := "(" + strings.Join(group, ", ") + ")"
		b.Grow(8 + n*(len(row)+2))
		b.WriteString("VALUES ")
		for i := range n {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(row)
		}
		return b.String(), args, nil
	}
	arrays, err := columnArrays(types, args)
	if err != nil {
		return "", nil, err
	}
	b.WriteString("SELECT * FROM unnest(")
	for i, t := range types {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("CAST(? AS " + t + "[])")
	}
	b.WriteString(") AS u (")
	for i := range types {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("column" + strconv.Itoa(i+1))
	}
	b.WriteString(")")
	return b.String(), arrays, nil
}

// columnArrays turns rows of args (len(types) values a row) into one
// array per column: []string for colText, []int64 for colBigint.
func columnArrays(types []string, args []any) ([]any, error) {
	n := len(args) / len(types)
	out := make([]any, len(types))
	for c, t := range types {
		switch t {
		case colText:
			col := make([]string, n)
			for r := range n {
				v, ok := args[r*len(types)+c].(string)
				if !ok {
					return nil, fmt.Errorf("row source: row %d column %d: %T is not text", r, c+1, args[r*len(types)+c])
				}
				col[r] = v
			}
			out[c] = col
		case colBigint:
			col := make([]int64, n)
			for r := range n {
				switch v := args[r*len(types)+c].(type) {
				case int64:
					col[r] = v
				case int:
					col[r] = int64(v)
				default:
					return nil, fmt.Errorf("row source: row %d column %d: %T is not an integer", r, c+1, v)
				}
			}
			out[c] = col
		default:
			return nil, fmt.Errorf("row source: column %d: unknown type %q", c+1, t)
		}
	}
	return out, nil
}

// insertSQL is a multi-row INSERT: head ("INSERT INTO t (columns)"), the
// rows args of types (see rowSource), then tail (an ON CONFLICT clause,
// RETURNING…), and its arguments. Without Dialect.Arrays the rows are
// VALUES of plain placeholders, as valuesSQL writes them.
func (db *DB) insertSQL(head string, types []string, args []any, tail string) (string, []any, error) {
	if !db.d.Arrays {
		if len(types) == 0 || len(args)%len(types) != 0 {
			return "", nil, fmt.Errorf("insert: %d values for %d columns", len(args), len(types))
		}
		return valuesSQL(head, len(types), len(args)/len(types), tail), args, nil
	}
	src, arrays, err := db.rowSource(types, args)
	if err != nil {
		return "", nil, err
	}
	return head + " " + src + "\n" + tail, arrays, nil
}

// arrayRowsPerStatement bounds the rows of one multi-row statement with
// Dialect.Arrays: its text is the same at any row count, so the bound only
// keeps one statement's arguments to a few hundred kilobytes.
const arrayRowsPerStatement = 1000

// perStatement is the bound on the rows of one multi-row statement: n
// (VALUES, a group of placeholders a row), or with Dialect.Arrays n but at
// least arrayRowsPerStatement.
func (db *DB) perStatement(n int) int {
	if db.d.Arrays {
		return max(n, arrayRowsPerStatement)
	}
	return n
}

// mustTypes returns the column types of a row of what as its args function
// binds them (row, for zero values): colText for a string, colBigint for an
// int or int64. It is called once, for package variables; any other type
// is a programming error.
func mustTypes(what string, row []any) []string {
	types := make([]string, len(row))
	for i, v := range row {
		switch v.(type) {
		case string:
			types[i] = colText
		case int, int64:
			types[i] = colBigint
		default:
			panic(fmt.Sprintf("sqldb: %s column %d: %T is neither text nor an integer", what, i+1, v))
		}
	}
	return types
}
