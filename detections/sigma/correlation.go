package sigma

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Correlation types of the Sigma correlation specification.
const (
	CorrelationEventCount      = "event_count"
	CorrelationValueCount      = "value_count"
	CorrelationTemporal        = "temporal"
	CorrelationTemporalOrdered = "temporal_ordered"
	CorrelationValueSum        = "value_sum"
	CorrelationValueAvg        = "value_avg"
)

// Correlation is the correlation block of a correlation rule: it counts or
// orders the hits of other rules, per group of field values, within a
// timespan.
type Correlation struct {
	Line     int
	Type     string   // event_count, value_count, value_sum, value_avg, temporal, temporal_ordered
	Rules    []string // the rules correlated, by name or id
	GroupBy  []string // fields (or aliases) whose values form a group
	Timespan time.Duration
	// Condition: every comparison must hold. Empty for temporal types
	// (all rules must match).
	Condition []Comparison
	// Field is the condition's field (value_count: the field whose
	// distinct values are counted).
	Field string
	// Aliases map an alias name, used in GroupBy or Field, to the field it
	// stands for in each rule (by rule name or id).
	Aliases map[string]map[string]string
	// Generate: the correlated rules also report their own hits. The
	// specification's default is false.
	Generate bool
}

// Comparison is one comparison of a correlation condition.
type Comparison struct {
	Op    string // gt, gte, lt, lte, eq, neq
	Value float64
}

// Holds reports whether n satisfies the comparison.
func (c Comparison) Holds(n float64) bool {
	switch c.Op {
	case "gt":
		return n > c.Value
	case "gte":
		return n >= c.Value
	case "lt":
		return n < c.Value
	case "lte":
		return n <= c.Value
	case "eq":
		return n == c.Value
	case "neq":
		return n != c.Value
	}
	return false
}

// parseCorrelation reads a correlation rule: the metadata of any rule and
// its correlation block (no logsource, no detection).
func parseCorrelationRule(file string, d *node) (*Rule, *Error) {
	r, err := parseMeta(file, d)
	if err != nil {
		return nil, err
	}
	if n := d.get("name"); n != nil && n.kind == kindScalar {
		r.Name = n.str
	}
	fail := func(line int, field string, err error) *Error {
		return &Error{File: file, Line: line, Field: field, RuleID: r.ID, Title: r.Title, Err: err}
	}
	c := d.get("correlation")
	if c.kind != kindMap {
		return nil, fail(c.line, "correlation", fmt.Errorf("want a mapping"))
	}
	corr := &Correlation{Line: c.line}
	for i, k := range c.keys {
		v := c.vals[i]
		field := "correlation." + k
		switch k {
		case "type":
			corr.Type = strings.ToLower(v.str)
			switch corr.Type {
			case CorrelationEventCount, CorrelationValueCount, CorrelationValueSum, CorrelationValueAvg,
				CorrelationTemporal, CorrelationTemporalOrdered:
			default:
				return nil, fail(v.line, field, fmt.Errorf("unknown type %q (want event_count, value_count, value_sum, value_avg, temporal or temporal_ordered)", v.str))
			}
		case "rules":
			l, err := stringList(v)
			if err != nil {
				return nil, fail(v.line, field, err)
			}
			corr.Rules = l
		case "group-by":
			l, err := stringList(v)
			if err != nil {
				return nil, fail(v.line, field, err)
			}
			corr.GroupBy = l
		case "timespan", "timeframe":
			ts, err := ParseTimespan(v.str)
			if err != nil {
				return nil, fail(v.line, field, err)
			}
			corr.Timespan = ts
		case "condition":
			if v.kind != kindMap {
				return nil, fail(v.line, field, fmt.Errorf("want a mapping such as {gte: 10}"))
			}
			for j, op := range v.keys {
				x := v.vals[j]
				if op == "field" {
					corr.Field = x.str
					continue
				}
				switch op {
				case "gt", "gte", "lt", "lte", "eq", "neq":
				default:
					return nil, fail(x.line, field+"."+op, fmt.Errorf("unknown comparison (want gt, gte, lt, lte, eq, neq or field)"))
				}
				n, err := strconv.ParseFloat(x.str, 64)
				if err != nil || x.kind != kindScalar {
					return nil, fail(x.line, field+"."+op, fmt.Errorf("%q is not a number", x.str))
				}
				corr.Condition = append(corr.Condition, Comparison{Op: op, Value: n})
			}
		case "aliases":
			if v.kind != kindMap {
				return nil, fail(v.line, field, fmt.Errorf("want a mapping of alias → rule → field"))
			}
			corr.Aliases = map[string]map[string]string{}
			for j, alias := range v.keys {
				m := v.vals[j]
				if m.kind != kindMap {
					return nil, fail(m.line, field+"."+alias, fmt.Errorf("want a mapping of rule → field"))
				}
				corr.Aliases[alias] = map[string]string{}
				for l, rule := range m.keys {
					corr.Aliases[alias][rule] = m.vals[l].str
				}
			}
		case "generate":
			switch strings.ToLower(v.str) {
			case "true", "yes":
				corr.Generate = true
			case "false", "no", "":
			default:
				return nil, fail(v.line, field, fmt.Errorf("want true or false"))
			}
		default:
			return nil, fail(v.line, field, fmt.Errorf("unknown key"))
		}
	}
	switch {
	case corr.Type == "":
		return nil, fail(c.line, "correlation.type", fmt.Errorf("missing"))
	case len(corr.Rules) == 0:
		return nil, fail(c.line, "correlation.rules", fmt.Errorf("missing: name the rules to correlate"))
	case corr.Timespan <= 0:
		return nil, fail(c.line, "correlation.timespan", fmt.Errorf("missing"))
	}
	switch corr.Type {
	case CorrelationEventCount, CorrelationValueCount, CorrelationValueSum, CorrelationValueAvg:
		if len(corr.Condition) == 0 {
			return nil, fail(c.line, "correlation.condition", fmt.Errorf("missing: %s needs a comparison such as {gte: 10}", corr.Type))
		}
		if corr.Type != CorrelationEventCount && corr.Field == "" {
			return nil, fail(c.line, "correlation.condition.field", fmt.Errorf("missing: %s needs the field it reads", corr.Type))
		}
	case CorrelationTemporal, CorrelationTemporalOrdered:
		if len(corr.Rules) < 2 {
			return nil, fail(c.line, "correlation.rules", fmt.Errorf("%s needs at least two rules", corr.Type))
		}
	}
	r.Correlation = corr
	return r, nil
}

// stringList reads a scalar or a list of scalars.
func stringList(n *node) ([]string, error) {
	switch n.kind {
	case kindScalar:
		return []string{n.str}, nil
	case kindSeq:
		var out []string
		for _, it := range n.vals {
			if it.kind != kindScalar {
				return nil, fmt.Errorf("want a list of strings")
			}
			out = append(out, it.str)
		}
		return out, nil
	}
	return nil, fmt.Errorf("want a string or a list of strings")
}

// ParseTimespan reads a Sigma timespan: a number and a unit, s, m, h, d or
// w (30s, 5m, 1h, 2d).
func ParseTimespan(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if len(s) < 2 {
		return 0, fmt.Errorf("timespan %q: want a number and a unit (s, m, h, d, w)", s)
	}
	n, err := strconv.Atoi(s[:len(s)-1])
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("timespan %q: want a positive whole number and a unit (s, m, h, d, w)", s)
	}
	unit := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour, 'w': 7 * 24 * time.Hour}[s[len(s)-1]]
	if unit == 0 {
		return 0, fmt.Errorf("timespan %q: unknown unit %q (want s, m, h, d or w)", s, s[len(s)-1:])
	}
	return time.Duration(n) * unit, nil
}
