package osqueryext

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/quarry-sec/quarry/tables"
)

// ErrTooManyRows is wrapped in the error of a generate call whose table
// produced more rows than the adapter's limit (see WithMaxRows). osquery's
// protocol returns a whole response at once, so an unbounded scan would be
// held in memory in full; failing is better than a watchdog kill.
var ErrTooManyRows = errors.New("too many rows for one osquery response")

// Collect runs t's Generate for q and returns its rows the way osquery takes
// them: one map per row from column name to the value as text. Integers are
// rendered in decimal, doubles in the shortest form that reads back exactly;
// a NULL is left out of the row, which osquery reads as SQL NULL (so
// "col IS NULL" agrees with the embedded engine). Only the columns q uses are
// filled (osquery never reads an unused one). maxRows bounds the result;
// zero or less means no bound. Collect stops when ctx ends and returns its
// error.
func Collect(ctx context.Context, t *tables.Table, q tables.QueryContext, maxRows int) ([]map[string]string, error) {
	type outCol struct {
		idx  int
		name string
	}
	cols := make([]outCol, 0, len(t.Columns))
	for i, c := range t.Columns {
		if q.Uses(c.Name) {
			cols = append(cols, outCol{i, c.Name})
		}
	}
	rows := make([]map[string]string, 0, 64)
	var limitErr error
	err := t.Generate(ctx, q, func(r tables.Row) bool {
		if len(rows)%ctxCheckEvery == ctxCheckEvery-1 && ctx.Err() != nil {
			return false
		}
		if maxRows > 0 && len(rows) >= maxRows {
			limitErr = fmt.Errorf("table %s: %w (limit %d)", t.Name, ErrTooManyRows, maxRows)
			return false
		}
		m := make(map[string]string, len(cols))
		for _, c := range cols {
			var v any
			if c.idx < len(r) {
				v = r[c.idx]
			}
			if v == nil {
				continue
			}
			m[c.name] = render(v)
		}
		rows = append(rows, m)
		return true
	})
	if limitErr != nil {
		return nil, limitErr
	}
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("table %s: %w", t.Name, err)
	}
	return rows, nil
}

// ctxCheckEvery is how many rows pass between two looks at the context.
const ctxCheckEvery = 1024

// render writes one typed value as osquery text.
func render(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case int:
		return strconv.Itoa(x)
	case bool:
		if x {
			return "1"
		}
		return "0"
	case []byte:
		return string(x)
	}
	return fmt.Sprint(v)
}
