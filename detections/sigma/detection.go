package sigma

import (
	"fmt"
	"strings"
)

// Modifiers lists every value modifier Quarry knows, with what it does.
var Modifiers = map[string]string{
	"contains":     "the value occurs anywhere in the field",
	"startswith":   "the field starts with the value",
	"endswith":     "the field ends with the value",
	"all":          "every value must match (instead of any)",
	"re":           "the value is a regular expression (RE2 syntax)",
	"i":            "with re: case-insensitive",
	"m":            "with re: multi-line (^ and $ match at line breaks)",
	"s":            "with re: dot matches newlines",
	"windash":      "a leading - or / may be any of - / – — ―",
	"base64":       "the value, base64-encoded",
	"base64offset": "the value, base64-encoded at each of the three offsets",
	"wide":         "the value as UTF-16LE (with base64)",
	"utf16le":      "the value as UTF-16LE",
	"utf16be":      "the value as UTF-16BE",
	"utf16":        "the value as UTF-16 with a byte-order mark",
	"cidr":         "the field is an IP address in the network",
	"exists":       "the field is present (true) or absent (false)",
	"cased":        "compare case-sensitively",
	"fieldref":     "the value names another field whose value must match",
	"expand":       "the value holds %placeholders% replaced by configured values",
	"lt":           "the field is a number less than the value",
	"lte":          "the field is a number at most the value",
	"gt":           "the field is a number greater than the value",
	"gte":          "the field is a number at least the value",
}

// parseDetection reads the searches and the condition, returning every
// problem: one per broken search, and the condition's.
func parseDetection(r *Rule, det *node) []*Error {
	r.Detection.Searches = map[string]*Search{}
	var errs []*Error
	var cond *node
	names := []string{} // every search named, broken or not, for the condition
	for i, name := range det.keys {
		v := det.vals[i]
		switch name {
		case "condition":
			cond = v
			continue
		case "timeframe":
			r.Detection.Timeframe = v.str
			continue
		}
		names = append(names, name)
		s, err := parseSearch(name, v)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.Line = det.keyLine[i]
		r.Detection.Searches[name] = s
		r.Detection.Order = append(r.Detection.Order, name)
	}
	if cond == nil {
		return append(errs, &Error{Line: det.line, Field: "detection.condition", Err: fmt.Errorf("missing")})
	}
	r.Detection.ConditionLine = cond.line
	var texts []string
	switch cond.kind {
	case kindScalar:
		texts = []string{cond.str}
	case kindSeq:
		for _, c := range cond.vals {
			if c.kind != kindScalar {
				return append(errs, &Error{Line: c.line, Field: "detection.condition", Err: fmt.Errorf("want a string")})
			}
			texts = append(texts, c.str)
		}
	default:
		return append(errs, &Error{Line: cond.line, Field: "detection.condition", Err: fmt.Errorf("want a string or a list of strings")})
	}
	if len(texts) == 0 {
		return append(errs, &Error{Line: cond.line, Field: "detection.condition", Err: fmt.Errorf("empty")})
	}
	r.Detection.ConditionText = texts
	var expr Expr
	for i, t := range texts {
		e, err := ParseCondition(t, names)
		if err != nil {
			line := cond.line
			if cond.kind == kindSeq {
				line = cond.vals[i].line
			}
			return append(errs, &Error{Line: line, Field: "detection.condition", Err: err})
		}
		if expr == nil {
			expr = e
		} else {
			expr = &Or{X: []Expr{expr, e}}
		}
	}
	r.Detection.Condition = expr
	return errs
}

func parseSearch(name string, v *node) (*Search, *Error) {
	field := "detection." + name
	s := &Search{Name: name, Line: v.line}
	switch v.kind {
	case kindMap:
		sel, err := parseSelection(field, v)
		if err != nil {
			return nil, err
		}
		s.Selections = []Selection{sel}
	case kindSeq:
		var kw *FieldMatch
		for _, it := range v.vals {
			switch it.kind {
			case kindMap:
				sel, err := parseSelection(field, it)
				if err != nil {
					return nil, err
				}
				s.Selections = append(s.Selections, sel)
			case kindScalar, kindNull:
				if kw == nil {
					kw = &FieldMatch{Line: it.line}
					s.Selections = append(s.Selections, Selection{kw})
				}
				kw.Values = append(kw.Values, Value{S: it.str, Null: it.kind == kindNull, IsStr: it.isStr})
			default:
				return nil, &Error{Line: it.line, Field: field, Err: fmt.Errorf("a list item must be a map or a value")}
			}
		}
	case kindScalar:
		s.Selections = []Selection{{&FieldMatch{Line: v.line, Values: []Value{{S: v.str, IsStr: v.isStr}}}}}
	default:
		return nil, &Error{Line: v.line, Field: field, Err: fmt.Errorf("empty search")}
	}
	if len(s.Selections) == 0 {
		return nil, &Error{Line: v.line, Field: field, Err: fmt.Errorf("empty search")}
	}
	return s, nil
}

func parseSelection(field string, m *node) (Selection, *Error) {
	var sel Selection
	for i, key := range m.keys {
		line := m.keyLine[i]
		parts := strings.Split(key, "|")
		fm := &FieldMatch{Field: parts[0], Line: line}
		for _, mod := range parts[1:] {
			mod = strings.ToLower(strings.TrimSpace(mod))
			if _, ok := Modifiers[mod]; !ok {
				return nil, &Error{Line: line, Field: field + "." + key, Err: fmt.Errorf("unknown modifier %q", mod)}
			}
			fm.Modifiers = append(fm.Modifiers, mod)
		}
		if err := checkModifiers(fm); err != nil {
			return nil, &Error{Line: line, Field: field + "." + key, Err: err}
		}
		v := m.vals[i]
		switch v.kind {
		case kindNull:
			fm.Values = []Value{{Null: true}}
		case kindScalar:
			fm.Values = []Value{{S: v.str, IsStr: v.isStr}}
		case kindSeq:
			for _, it := range v.vals {
				switch it.kind {
				case kindNull:
					fm.Values = append(fm.Values, Value{Null: true})
				case kindScalar:
					fm.Values = append(fm.Values, Value{S: it.str, IsStr: it.isStr})
				default:
					return nil, &Error{Line: it.line, Field: field + "." + key, Err: fmt.Errorf("a value must be a scalar, not a %s", kindName(it.kind))}
				}
			}
			if len(fm.Values) == 0 {
				return nil, &Error{Line: line, Field: field + "." + key, Err: fmt.Errorf("empty value list")}
			}
		default:
			return nil, &Error{Line: line, Field: field + "." + key, Err: fmt.Errorf("a value must be a scalar or a list, not a %s", kindName(v.kind))}
		}
		sel = append(sel, fm)
	}
	if len(sel) == 0 {
		return nil, &Error{Line: m.line, Field: field, Err: fmt.Errorf("empty selection")}
	}
	return sel, nil
}

func kindName(k nodeKind) string {
	switch k {
	case kindMap:
		return "mapping"
	case kindSeq:
		return "list"
	case kindNull:
		return "null"
	}
	return "scalar"
}

// checkModifiers rejects combinations that make no sense.
func checkModifiers(fm *FieldMatch) error {
	hasRe := fm.Has("re")
	for _, m := range []string{"i", "m", "s"} {
		if fm.Has(m) && !hasRe {
			return fmt.Errorf("modifier %q only goes with re", m)
		}
	}
	n := 0
	for _, m := range []string{"contains", "startswith", "endswith", "re", "cidr", "exists", "lt", "lte", "gt", "gte"} {
		if fm.Has(m) {
			n++
		}
	}
	if n > 1 {
		return fmt.Errorf("modifiers %s: more than one comparison", strings.Join(fm.Modifiers, "|"))
	}
	if fm.Field == "" && (fm.Has("exists") || fm.Has("fieldref")) {
		return fmt.Errorf("modifier needs a field name")
	}
	return nil
}
