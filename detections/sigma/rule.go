package sigma

import (
	"fmt"
	"strings"
)

// Rule is one parsed Sigma rule.
type Rule struct {
	File string // the file it came from
	Line int    // the line of its document's first key

	Title          string
	ID             string
	Name           string // the name other rules refer to it by (correlations)
	Status         string // stable, test, experimental, deprecated, unsupported
	Description    string
	Author         string
	Date           string
	Modified       string
	Level          string // informational, low, medium, high, critical
	References     []string
	Tags           []string
	TagLines       []int // the line of each of Tags, 0 when unknown
	FalsePositives []string
	Fields         []string
	Logsource      Logsource
	Detection      Detection

	// Quarry's additions: the rule's own confidence (low, medium, high) and
	// what the analyst should do on a hit.
	Confidence      string
	Recommendations string
	// SearchTags narrows a rule's techniques per hit (Quarry's addition,
	// key search_tags): for a search of the detection, the technique tags
	// (also in Tags) that its match evidences. A hit reports a technique
	// listed here only when one of the searches listing it matched the
	// event; techniques listed nowhere are reported on every hit.
	SearchTags []SearchTags

	// Correlation is set for a correlation rule, which has no logsource
	// and no detection of its own.
	Correlation *Correlation
}

// SearchTags are the technique tags one search of a rule evidences.
type SearchTags struct {
	Search string
	Tags   []string // lower case, as in Rule.Tags
	Line   int
}

// Logsource says which events a rule applies to.
type Logsource struct {
	Category   string
	Product    string
	Service    string
	Definition string
}

// Detection is a rule's named searches and its condition.
type Detection struct {
	// Searches by name, and their names in file order.
	Searches map[string]*Search
	Order    []string
	// Condition is the rule's condition; a list of conditions in the rule is
	// joined with "or".
	Condition     Expr
	ConditionText []string
	ConditionLine int
	Timeframe     string
}

// Search is one named search: its selections are alternatives (a list of
// maps is OR), each selection is a conjunction of field matchers.
type Search struct {
	Name       string
	Line       int
	Selections []Selection
}

// Selection is a set of field matchers that must all match.
type Selection []*FieldMatch

// FieldMatch tests one field (or, with an empty Field, any field: a keyword
// search) against values with modifiers.
type FieldMatch struct {
	Field     string   // "" for keywords
	Modifiers []string // in order, lower-cased: contains, all, re, i…
	Values    []Value
	Line      int
}

// Has reports whether the field matcher carries modifier m.
func (f *FieldMatch) Has(m string) bool {
	for _, x := range f.Modifiers {
		if x == m {
			return true
		}
	}
	return false
}

// Value is one value of a field matcher.
type Value struct {
	S     string // as written (strings unquoted, numbers as text)
	Null  bool   // YAML null: the field is absent or empty
	IsStr bool   // written as a string, not a number or boolean
}

// Result is what Parse found in one file.
type Result struct {
	Rules   []*Rule
	Errors  []*Error // documents that are not valid rules
	Skipped []*Error // documents skipped on purpose (filters); wrap ErrNotSupported
}

// Parse reads every YAML document of a rule file. A broken document never
// stops the others from being read; its error lands in Result.Errors.
func Parse(file string, data []byte) Result {
	var res Result
	docs, err := parseYAML(data)
	if err != nil {
		res.Errors = append(res.Errors, &Error{File: file, Line: yamlErrLine(err), Err: err})
		return res
	}
	var global, prev *node
	for _, d := range docs {
		if d.kind == kindNull {
			continue
		}
		if d.kind != kindMap {
			res.Errors = append(res.Errors, &Error{File: file, Line: d.line, Err: fmt.Errorf("a rule must be a YAML mapping")})
			continue
		}
		if a := d.get("action"); a != nil {
			switch a.str {
			case "global":
				global = withoutKey(d, "action")
				continue
			case "reset":
				global = nil
				continue
			case "repeat":
				if prev == nil {
					res.Errors = append(res.Errors, &Error{File: file, Line: a.line, Field: "action", Err: fmt.Errorf("repeat without a previous rule")})
					continue
				}
				d = merge(prev, withoutKey(d, "action"))
			default:
				res.Errors = append(res.Errors, &Error{File: file, Line: a.line, Field: "action", Err: fmt.Errorf("unknown action %q (want global, reset or repeat)", a.str)})
				continue
			}
		} else if global != nil {
			d = merge(global, d)
		}
		prev = d
		if d.get("correlation") != nil {
			r, perr := parseCorrelationRule(file, d)
			if perr != nil {
				res.Errors = append(res.Errors, perr)
				continue
			}
			res.Rules = append(res.Rules, r)
			continue
		}
		if f := d.get("filter"); f != nil && d.get("detection") == nil {
			res.Skipped = append(res.Skipped, &Error{File: file, Line: f.line, Field: "filter", RuleID: scalar(d.get("id")), Title: scalar(d.get("title")),
				Err: fmt.Errorf("filter documents are %w", ErrNotSupported)})
			continue
		}
		r, perrs := parseRule(file, d)
		if len(perrs) > 0 {
			res.Errors = append(res.Errors, perrs...)
			continue
		}
		res.Rules = append(res.Rules, r)
	}
	return res
}

// ParseRule parses data that must hold exactly one rule.
func ParseRule(file string, data []byte) (*Rule, error) {
	res := Parse(file, data)
	if len(res.Errors) > 0 {
		return nil, res.Errors[0]
	}
	if len(res.Rules) != 1 {
		return nil, &Error{File: file, Err: fmt.Errorf("want one rule, found %d", len(res.Rules))}
	}
	return res.Rules[0], nil
}

func yamlErrLine(err error) int {
	// goccy/go-yaml formats errors as "[line:col] message".
	s := err.Error()
	if i := strings.Index(s, "["); i >= 0 {
		var l, c int
		if _, e := fmt.Sscanf(s[i:], "[%d:%d]", &l, &c); e == nil {
			return l
		}
	}
	return 0
}

func scalar(n *node) string {
	if n == nil || n.kind != kindScalar {
		return ""
	}
	return n.str
}

func withoutKey(n *node, key string) *node {
	out := &node{kind: kindMap, line: n.line}
	for i, k := range n.keys {
		if k != key {
			out.keys = append(out.keys, k)
			out.keyLine = append(out.keyLine, n.keyLine[i])
			out.vals = append(out.vals, n.vals[i])
		}
	}
	return out
}

// merge lays doc over base, maps merged key by key (Sigma rule collections).
func merge(base, doc *node) *node {
	if base == nil || base.kind != kindMap || doc.kind != kindMap {
		return doc
	}
	out := &node{kind: kindMap, line: doc.line}
	for i, k := range base.keys {
		v := base.vals[i]
		if dv := doc.get(k); dv != nil {
			v = merge(v, dv)
		}
		out.keys = append(out.keys, k)
		out.keyLine = append(out.keyLine, base.keyLine[i])
		out.vals = append(out.vals, v)
	}
	for i, k := range doc.keys {
		if base.get(k) == nil {
			out.keys = append(out.keys, k)
			out.keyLine = append(out.keyLine, doc.keyLine[i])
			out.vals = append(out.vals, doc.vals[i])
		}
	}
	return out
}
