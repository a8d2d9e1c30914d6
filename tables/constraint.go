package tables

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Operator is the comparison of a constraint.
type Operator int

// The operators an engine may push down to a table.
const (
	OpEQ Operator = iota + 1
	OpLT
	OpLE
	OpGT
	OpGE
	OpLIKE
	// OpIN carries a list of values in Constraint.Values. The embedded SQLite
	// engine delivers "col IN (a, b)" as one Generate call per value with OpEQ,
	// as SQLite does for every virtual table; the osquery adapter may pass OpIN.
	OpIN
)

// String returns the SQL spelling of the operator.
func (o Operator) String() string {
	switch o {
	case OpEQ:
		return "="
	case OpLT:
		return "<"
	case OpLE:
		return "<="
	case OpGT:
		return ">"
	case OpGE:
		return ">="
	case OpLIKE:
		return "LIKE"
	case OpIN:
		return "IN"
	}
	return fmt.Sprintf("Operator(%d)", int(o))
}

// Constraint is one WHERE-clause term an engine pushed down: column op value.
// Value is int64, float64, string or nil; Values holds the list of an OpIN.
type Constraint struct {
	Column string
	Op     Operator
	Value  any
	Values []any
}

// String renders the constraint for logs and tests.
func (c Constraint) String() string {
	if c.Op == OpIN {
		parts := make([]string, len(c.Values))
		for i, v := range c.Values {
			parts[i] = fmt.Sprintf("%v", v)
		}
		return fmt.Sprintf("%s IN (%s)", c.Column, strings.Join(parts, ", "))
	}
	return fmt.Sprintf("%s %s %v", c.Column, c.Op, c.Value)
}

// QueryContext is what a table learns of the query: the pushed-down
// constraints and which columns the query reads.
type QueryContext struct {
	Constraints []Constraint
	// UsedColumns names the columns the query reads; nil means all of them.
	UsedColumns map[string]bool
}

// Uses reports whether the query reads the named column.
func (q QueryContext) Uses(column string) bool {
	return q.UsedColumns == nil || q.UsedColumns[column]
}

// Equals returns the values the column must equal (from = and IN
// constraints), and whether there is any such constraint. When several
// equality constraints name the column, only values in all of them can match,
// but returning the first set is always safe because the engine re-checks.
func (q QueryContext) Equals(column string) ([]any, bool) {
	for _, c := range q.Constraints {
		if c.Column != column {
			continue
		}
		switch c.Op {
		case OpEQ:
			return []any{c.Value}, true
		case OpIN:
			return c.Values, true
		}
	}
	return nil, false
}

// EqualStrings is Equals with every value rendered as text, the way SQLite
// compares a value with a TEXT column.
func (q QueryContext) EqualStrings(column string) ([]string, bool) {
	vals, ok := q.Equals(column)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(vals))
	for _, v := range vals {
		if v == nil {
			continue // NULL equals nothing
		}
		out = append(out, ValueString(v))
	}
	return out, true
}

// IntRange returns the bounds the constraints put on an integer column, both
// inclusive. Without a bound, lo is math.MinInt64 and hi math.MaxInt64; ok is
// false when no constraint bounds the column at all.
func (q QueryContext) IntRange(column string) (lo, hi int64, ok bool) {
	lo, hi = minInt64, maxInt64
	for _, c := range q.Constraints {
		if c.Column != column {
			continue
		}
		v, isNum := asFloat(c.Value)
		if !isNum {
			continue
		}
		switch c.Op {
		case OpEQ:
			lo, hi, ok = maxI(lo, ceil(v)), minI(hi, floor(v)), true
		case OpGT:
			lo, ok = maxI(lo, floor(v)+1), true
		case OpGE:
			lo, ok = maxI(lo, ceil(v)), true
		case OpLT:
			hi, ok = minI(hi, ceil(v)-1), true
		case OpLE:
			hi, ok = minI(hi, floor(v)), true
		}
	}
	return lo, hi, ok
}

// TimeRange reads the constraints on a column of UNIX seconds as a time
// range: since (inclusive) and until (exclusive), each zero where the
// constraints leave it open; none when no value can satisfy them.
func (q QueryContext) TimeRange(column string) (since, until time.Time, none bool) {
	lo, hi, ok := q.IntRange(column)
	if !ok {
		return since, until, false
	}
	if lo > hi {
		return since, until, true
	}
	if lo > -1<<40 {
		since = time.Unix(lo, 0)
	}
	if hi < 1<<40 {
		until = time.Unix(hi+1, 0)
	}
	return since, until, false
}

const (
	minInt64 = -1 << 63
	maxInt64 = 1<<63 - 1
)

func asFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case float64:
		return x, true
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		return f, err == nil
	}
	return 0, false
}

func floor(f float64) int64 {
	switch {
	case f >= 9.2e18:
		return maxInt64
	case f <= -9.2e18:
		return minInt64
	}
	i := int64(f)
	if float64(i) > f {
		i--
	}
	return i
}

func ceil(f float64) int64 {
	i := floor(f)
	if float64(i) < f && i != maxInt64 {
		i++
	}
	return i
}

func maxI(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

func minI(a, b int64) int64 {
	if a < b {
		return a
	}
	return b
}

// ValueString renders a constraint value as SQLite would cast it to TEXT.
func ValueString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case []byte:
		return string(x)
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}
