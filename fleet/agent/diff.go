package agent

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Row is one result row as osquery logs it with numerics off: every value
// a string, NULL as "".
type Row = map[string]string

// ErrTooManyRows is wrapped when a query returns more rows than allowed.
var ErrTooManyRows = fmt.Errorf("too many rows")

// scanRows reads every row as strings, failing past max rows (max <= 0: no
// limit).
func scanRows(rows *sql.Rows, max int) ([]Row, error) {
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	out := []Row{}
	for rows.Next() {
		if max > 0 && len(out) >= max {
			return nil, fmt.Errorf("more than %d rows (add a LIMIT): %w", max, ErrTooManyRows)
		}
		for i := range vals {
			vals[i] = nil
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		r := make(Row, len(cols))
		for i, c := range cols {
			r[c] = formatValue(vals[i])
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// formatValue renders a SQL value as osquery does with numerics off.
func formatValue(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case []byte:
		return string(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		if x {
			return "1"
		}
		return "0"
	case time.Time:
		return strconv.FormatInt(x.Unix(), 10)
	default:
		return fmt.Sprint(x)
	}
}

// rowKey is a row's canonical form (encoding/json sorts map keys).
func rowKey(r Row) string {
	b, _ := json.Marshal(r) // a map of strings always encodes
	return string(b)
}

// diffRows compares two results as multisets of rows: added are rows of cur
// not in prev, removed rows of prev not in cur (each duplicate counted).
func diffRows(prev, cur []Row) (added, removed []Row) {
	count := make(map[string]int, len(prev))
	for _, r := range prev {
		count[rowKey(r)]++
	}
	added, removed = []Row{}, []Row{}
	for _, r := range cur {
		k := rowKey(r)
		if count[k] > 0 {
			count[k]--
			continue
		}
		added = append(added, r)
	}
	for _, r := range prev {
		k := rowKey(r)
		if count[k] > 0 {
			count[k]--
			removed = append(removed, r)
		}
	}
	return added, removed
}
