package osqueryext

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/quarry-sec/quarry/tables"
)

// osquery's constraint operators, as osqueryd sends them in the "op" field of
// a generate request's context (SQLite's SQLITE_INDEX_CONSTRAINT_* codes).
const (
	opEquals         = 2
	opIn             = 3 // not sent by current osqueryd; read as one more '='
	opGreaterThan    = 4
	opLessOrEquals   = 8
	opLessThan       = 16
	opGreaterOrEqual = 32
	opLike           = 65
)

// contextJSON is the "context" of a generate request, as osqueryd writes it:
//
//	{"constraints":[{"name":"id","list":[{"op":2,"expr":"T1003.001"}],"affinity":"TEXT"}],
//	 "colsUsed":["id","name"],"colsUsedBitset":3}
//
// osqueryd lists every column of the table in "constraints", most with an
// empty list. "colsUsed" is absent from older osquery versions.
type contextJSON struct {
	Constraints []constraintListJSON `json:"constraints"`
	ColsUsed    *[]string            `json:"colsUsed"`
}

type constraintListJSON struct {
	Name     string          `json:"name"`
	Affinity string          `json:"affinity"`
	List     json.RawMessage `json:"list"`
}

type constraintJSON struct {
	Op   json.RawMessage `json:"op"`
	Expr json.RawMessage `json:"expr"`
}

// ParseContext turns raw, the context JSON of an osquery generate request, into
// the table interface's QueryContext for t.
//
// Each constraint's expression is typed by its affinity (the column's type
// when osquery sends none): INTEGER and BIGINT as int64, DOUBLE as float64,
// TEXT as string; an expression that does not parse as its affinity's number
// stays a string, which the table treats as matching nothing it could look
// up. Several '=' on one column (osqueryd sends an IN list that way) become
// one OpIN constraint with the values in order; a single '=' stays OpEQ.
// Operators the table interface has no use for (GLOB, REGEXP, MATCH and
// SQLite's newer codes) are dropped: osquery re-checks every row, so leaving
// a constraint out only widens what Generate returns. Constraints on columns
// t does not have are dropped too.
//
// UsedColumns is set from "colsUsed" when osquery sends it; an empty list
// (SELECT count(*)) means no column is read.
func ParseContext(t *tables.Table, raw string) (tables.QueryContext, error) {
	var q tables.QueryContext
	if strings.TrimSpace(raw) == "" {
		return q, nil
	}
	var doc contextJSON
	if err := json.Unmarshal([]byte(raw), &doc); err != nil {
		return q, fmt.Errorf("parse query context: %w", err)
	}
	for _, cl := range doc.Constraints {
		col := t.ColumnIndex(cl.Name)
		if col < 0 {
			continue
		}
		list, err := parseList(cl.List)
		if err != nil {
			return q, fmt.Errorf("parse query context: column %s: %w", cl.Name, err)
		}
		affinity := cl.Affinity
		if affinity == "" || affinity == "UNKNOWN" {
			affinity = t.Columns[col].Type.String()
		}
		q.Constraints = appendColumn(q.Constraints, cl.Name, affinity, list)
	}
	if doc.ColsUsed != nil {
		q.UsedColumns = make(map[string]bool, len(*doc.ColsUsed))
		for _, name := range *doc.ColsUsed {
			q.UsedColumns[name] = true
		}
	}
	return q, nil
}

type rawConstraint struct {
	op   int
	expr string
}

// parseList reads a column's constraint list. osquery writes an empty list
// as [] (older versions as ""); "op" is a number (a numeric string before
// osquery 3.0) and "expr" a string.
func parseList(raw json.RawMessage) ([]rawConstraint, error) {
	if len(raw) == 0 || raw[0] != '[' {
		var s string
		if len(raw) == 0 || string(raw) == "null" || json.Unmarshal(raw, &s) == nil {
			return nil, nil
		}
		return nil, fmt.Errorf("unexpected constraint list %.40s", raw)
	}
	var items []constraintJSON
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("constraint list: %w", err)
	}
	out := make([]rawConstraint, 0, len(items))
	for _, it := range items {
		op, err := parseOp(it.Op)
		if err != nil {
			return nil, err
		}
		var expr string
		if err := json.Unmarshal(it.Expr, &expr); err != nil {
			return nil, fmt.Errorf("constraint expression %.40s is not a string", it.Expr)
		}
		out = append(out, rawConstraint{op: op, expr: expr})
	}
	return out, nil
}

func parseOp(raw json.RawMessage) (int, error) {
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		if op, err := strconv.Atoi(n.String()); err == nil {
			return op, nil
		}
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if op, err := strconv.Atoi(strings.TrimSpace(s)); err == nil {
			return op, nil
		}
	}
	return 0, fmt.Errorf("constraint operator %.20s is not a number", raw)
}

// appendColumn appends one column's constraints: its '=' entries merged into
// one OpEQ or OpIN at the place of the first, the others in order.
func appendColumn(out []tables.Constraint, name, affinity string, list []rawConstraint) []tables.Constraint {
	eqAt := -1
	for _, rc := range list {
		var op tables.Operator
		switch rc.op {
		case opEquals, opIn:
			v := typedValue(affinity, rc.expr)
			if eqAt < 0 {
				eqAt = len(out)
				out = append(out, tables.Constraint{Column: name, Op: tables.OpEQ, Value: v})
				continue
			}
			c := &out[eqAt]
			if c.Op == tables.OpEQ {
				c.Op, c.Values, c.Value = tables.OpIN, []any{c.Value}, nil
			}
			c.Values = append(c.Values, v)
			continue
		case opGreaterThan:
			op = tables.OpGT
		case opLessOrEquals:
			op = tables.OpLE
		case opLessThan:
			op = tables.OpLT
		case opGreaterOrEqual:
			op = tables.OpGE
		case opLike:
			out = append(out, tables.Constraint{Column: name, Op: tables.OpLIKE, Value: rc.expr})
			continue
		default:
			continue
		}
		out = append(out, tables.Constraint{Column: name, Op: op, Value: typedValue(affinity, rc.expr)})
	}
	return out
}

// typedValue parses an expression by the column affinity osquery gives.
func typedValue(affinity, expr string) any {
	switch affinity {
	case "INTEGER", "BIGINT", "UNSIGNED BIGINT":
		s := strings.TrimSpace(expr)
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i
		}
		if u, err := strconv.ParseUint(s, 10, 64); err == nil {
			return float64(u) // beyond int64: keep the magnitude
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(f) {
			return f
		}
	case "DOUBLE":
		if f, err := strconv.ParseFloat(strings.TrimSpace(expr), 64); err == nil && !math.IsNaN(f) {
			return f
		}
	}
	return expr
}
