package eventstore

import (
	"strings"
	"time"
)

// where builds a SQL WHERE clause from optional conditions; the event and
// hit filters share it.
type where struct {
	conds []string
	args  []any
}

// add appends a condition with its arguments.
func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

// window adds time >= since and time < until, each when set.
func (w *where) window(since, until time.Time) {
	if !since.IsZero() {
		w.add("time >= ?", since.UnixNano())
	}
	if !until.IsZero() {
		w.add("time < ?", until.UnixNano())
	}
}

// in adds col IN (vals…) when vals is not empty.
func in[T any](w *where, col string, vals []T) {
	if len(vals) == 0 {
		return
	}
	args := make([]any, len(vals))
	for i, v := range vals {
		args[i] = v
	}
	w.add(col+" IN ("+strings.TrimSuffix(strings.Repeat("?,", len(vals)), ",")+")", args...)
}

// anyOf adds (term OR term …), one term per value, each taking the values
// that arg gives for it.
func anyOf[T any](w *where, term string, vals []T, arg func(T) []any) {
	if len(vals) == 0 {
		return
	}
	terms := make([]string, len(vals))
	var args []any
	for i, v := range vals {
		terms[i] = term
		args = append(args, arg(v)...)
	}
	w.add("("+strings.Join(terms, " OR ")+")", args...)
}

// sql returns " WHERE …" and its arguments, or "" when there is no condition.
func (w *where) sql() (string, []any) {
	if len(w.conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(w.conds, " AND "), w.args
}
