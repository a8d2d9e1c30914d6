package sigma

import (
	"fmt"
	"strings"
)

// parseMeta reads what every rule has, detection and correlation rules
// alike: id, title, status, level, tags, Quarry's confidence and
// recommendations…
func parseMeta(file string, d *node) (*Rule, *Error) {
	r := &Rule{File: file, Line: d.line}
	fail := func(line int, field string, err error) *Error {
		return &Error{File: file, Line: line, Field: field, RuleID: r.ID, Title: r.Title, Err: err}
	}
	str := func(key string, dst *string) *Error {
		n := d.get(key)
		if n == nil || n.kind == kindNull {
			return nil
		}
		if n.kind != kindScalar {
			return fail(n.line, key, fmt.Errorf("want a string"))
		}
		*dst = n.str
		return nil
	}
	list := func(key string, dst *[]string) *Error {
		n := d.get(key)
		if n == nil || n.kind == kindNull {
			return nil
		}
		if n.kind == kindScalar {
			*dst = []string{n.str}
			return nil
		}
		if n.kind != kindSeq {
			return fail(n.line, key, fmt.Errorf("want a list of strings"))
		}
		for _, it := range n.vals {
			if it.kind == kindNull {
				continue
			}
			if it.kind != kindScalar {
				return fail(it.line, key, fmt.Errorf("want a list of strings"))
			}
			*dst = append(*dst, it.str)
		}
		return nil
	}
	for _, s := range []struct {
		k string
		p *string
	}{{"id", &r.ID}, {"title", &r.Title}, {"status", &r.Status}, {"description", &r.Description},
		{"author", &r.Author}, {"date", &r.Date}, {"modified", &r.Modified}, {"level", &r.Level},
		{"confidence", &r.Confidence}, {"recommendations", &r.Recommendations}} {
		if err := str(s.k, s.p); err != nil {
			return nil, err
		}
	}
	for _, l := range []struct {
		k string
		p *[]string
	}{{"references", &r.References}, {"tags", &r.Tags}, {"falsepositives", &r.FalsePositives}, {"fields", &r.Fields}} {
		if err := list(l.k, l.p); err != nil {
			return nil, err
		}
	}
	if n := d.get("recommendations"); n != nil && n.kind == kindSeq {
		var recs []string
		if err := list("recommendations", &recs); err != nil {
			return nil, err
		}
		r.Recommendations = strings.Join(recs, "\n")
	}
	if r.Title == "" {
		return nil, fail(d.line, "title", fmt.Errorf("missing"))
	}
	r.Level = strings.ToLower(r.Level)
	switch r.Level {
	case "", "informational", "low", "medium", "high", "critical":
	default:
		return nil, fail(d.get("level").line, "level", fmt.Errorf("unknown level %q (want informational, low, medium, high or critical)", r.Level))
	}
	r.Status = strings.ToLower(r.Status)
	switch r.Status {
	case "", "stable", "test", "experimental", "deprecated", "unsupported":
	default:
		return nil, fail(d.get("status").line, "status", fmt.Errorf("unknown status %q", r.Status))
	}
	r.Confidence = strings.ToLower(r.Confidence)
	switch r.Confidence {
	case "", "low", "medium", "high":
	default:
		return nil, fail(d.get("confidence").line, "confidence", fmt.Errorf("unknown confidence %q (want low, medium or high)", r.Confidence))
	}
	return r, nil
}

func parseRule(file string, d *node) (*Rule, *Error) {
	r, perr := parseMeta(file, d)
	if perr != nil {
		return nil, perr
	}
	if n := d.get("name"); n != nil && n.kind == kindScalar {
		r.Name = n.str
	}
	fail := func(line int, field string, err error) *Error {
		return &Error{File: file, Line: line, Field: field, RuleID: r.ID, Title: r.Title, Err: err}
	}
	ls := d.get("logsource")
	if ls == nil || ls.kind != kindMap {
		line := d.line
		if ls != nil {
			line = ls.line
		}
		return nil, fail(line, "logsource", fmt.Errorf("missing or not a mapping"))
	}
	for i, k := range ls.keys {
		v := ls.vals[i]
		if v.kind != kindScalar && v.kind != kindNull {
			return nil, fail(v.line, "logsource."+k, fmt.Errorf("want a string"))
		}
		switch k {
		case "category":
			r.Logsource.Category = strings.ToLower(v.str)
		case "product":
			r.Logsource.Product = strings.ToLower(v.str)
		case "service":
			r.Logsource.Service = strings.ToLower(v.str)
		case "definition":
			r.Logsource.Definition = v.str
		}
	}
	det := d.get("detection")
	if det == nil || det.kind != kindMap {
		line := d.line
		if det != nil {
			line = det.line
		}
		return nil, fail(line, "detection", fmt.Errorf("missing or not a mapping"))
	}
	if err := parseDetection(r, det); err != nil {
		err.File, err.RuleID, err.Title = file, r.ID, r.Title
		return nil, err
	}
	return r, nil
}
