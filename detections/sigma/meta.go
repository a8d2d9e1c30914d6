package sigma

import (
	"fmt"
	"strings"
)

// parseMeta reads what every rule has, detection and correlation rules
// alike: id, title, status, level, tags, Quarry's confidence and
// recommendations…, failing with the first problem.
func parseMeta(file string, d *node) (*Rule, *Error) {
	r, errs := parseMetaAll(file, d)
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return r, nil
}

// parseMetaAll is parseMeta reporting every problem, each at its own line;
// the rule is nil when there is one.
func parseMetaAll(file string, d *node) (*Rule, []*Error) {
	r := &Rule{File: file, Line: d.line}
	var errs []*Error
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
			errs = append(errs, err)
		}
	}
	for _, l := range []struct {
		k string
		p *[]string
	}{{"references", &r.References}, {"tags", &r.Tags}, {"falsepositives", &r.FalsePositives}, {"fields", &r.Fields}} {
		if err := list(l.k, l.p); err != nil {
			errs = append(errs, err)
		}
	}
	if n := d.get("tags"); n != nil {
		for _, it := range n.vals {
			if it.kind == kindScalar {
				r.TagLines = append(r.TagLines, it.line)
			}
		}
		if n.kind == kindScalar {
			r.TagLines = []int{n.line}
		}
	}
	if n := d.get("recommendations"); n != nil && n.kind == kindSeq {
		var recs []string
		if err := list("recommendations", &recs); err != nil {
			errs = append(errs, err)
		}
		r.Recommendations = strings.Join(recs, "\n")
	}
	if r.Title == "" && (d.get("title") == nil || d.get("title").kind != kindSeq && d.get("title").kind != kindMap) {
		errs = append(errs, fail(d.line, "title", fmt.Errorf("missing")))
	}
	r.Level = strings.ToLower(r.Level)
	switch r.Level {
	case "", "informational", "low", "medium", "high", "critical":
	default:
		errs = append(errs, fail(d.get("level").line, "level", fmt.Errorf("unknown level %q (want informational, low, medium, high or critical)", r.Level)))
	}
	r.Status = strings.ToLower(r.Status)
	switch r.Status {
	case "", "stable", "test", "experimental", "deprecated", "unsupported":
	default:
		errs = append(errs, fail(d.get("status").line, "status", fmt.Errorf("unknown status %q", r.Status)))
	}
	r.Confidence = strings.ToLower(r.Confidence)
	switch r.Confidence {
	case "", "low", "medium", "high":
	default:
		errs = append(errs, fail(d.get("confidence").line, "confidence", fmt.Errorf("unknown confidence %q (want low, medium or high)", r.Confidence)))
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return r, nil
}

// parseRule parses a detection rule, reporting every problem found (in the
// metadata, the log source, each search and the condition) at its own line.
func parseRule(file string, d *node) (*Rule, []*Error) {
	r, errs := parseMetaAll(file, d)
	if r == nil { // the rest is still checked, for its own errors
		r = &Rule{File: file, Line: d.line, ID: scalar(d.get("id")), Title: scalar(d.get("title"))}
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
		errs = append(errs, fail(line, "logsource", fmt.Errorf("missing or not a mapping")))
		ls = &node{kind: kindMap}
	}
	for i, k := range ls.keys {
		v := ls.vals[i]
		if v.kind != kindScalar && v.kind != kindNull {
			errs = append(errs, fail(v.line, "logsource."+k, fmt.Errorf("want a string")))
			continue
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
		return nil, append(errs, fail(line, "detection", fmt.Errorf("missing or not a mapping")))
	}
	for _, err := range parseDetection(r, det) {
		err.File, err.RuleID, err.Title = file, r.ID, r.Title
		errs = append(errs, err)
	}
	errs = append(errs, parseSearchTags(r, d.get("search_tags"), fail)...)
	if len(errs) > 0 {
		return nil, errs
	}
	return r, nil
}

// parseSearchTags reads search_tags: a mapping from a search of the
// detection to the technique tags of the rule that its match evidences.
func parseSearchTags(r *Rule, n *node, fail func(int, string, error) *Error) []*Error {
	if n == nil || n.kind == kindNull {
		return nil
	}
	if n.kind != kindMap {
		return []*Error{fail(n.line, "search_tags", fmt.Errorf("want a mapping from search names to lists of technique tags"))}
	}
	tagged := map[string]bool{}
	for _, t := range r.Tags {
		tagged[strings.ToLower(strings.TrimSpace(t))] = true
	}
	var errs []*Error
	for i, name := range n.keys {
		field := "search_tags." + name
		if _, ok := r.Detection.Searches[name]; !ok {
			errs = append(errs, fail(n.keyLine[i], field, fmt.Errorf("no search %q in the detection", name)))
			continue
		}
		st := SearchTags{Search: name, Line: n.keyLine[i]}
		v := n.vals[i]
		items := v.vals
		if v.kind == kindScalar {
			items = []*node{v}
		} else if v.kind != kindSeq {
			errs = append(errs, fail(v.line, field, fmt.Errorf("want a list of technique tags")))
			continue
		}
		for _, it := range items {
			tag := strings.ToLower(strings.TrimSpace(it.str))
			id, isAttack := strings.CutPrefix(tag, "attack.")
			switch {
			case it.kind != kindScalar:
				errs = append(errs, fail(it.line, field, fmt.Errorf("want a list of technique tags")))
			case !isAttack || !IsTechniqueID(id):
				errs = append(errs, fail(it.line, field, fmt.Errorf("%q is not a technique tag (attack.tNNNN or attack.tNNNN.NNN)", it.str)))
			case !tagged[tag]:
				errs = append(errs, fail(it.line, field, fmt.Errorf("%s is not among the rule's tags (list it there too)", tag)))
			default:
				st.Tags = append(st.Tags, tag)
			}
		}
		r.SearchTags = append(r.SearchTags, st)
	}
	return errs
}

// IsTechniqueID reports whether a lower-case tag without its "attack."
// prefix names an ATT&CK technique (t1059 or t1059.001).
func IsTechniqueID(id string) bool {
	id, ok := strings.CutPrefix(id, "t")
	if !ok {
		return false
	}
	main, sub, hasSub := strings.Cut(id, ".")
	digits := func(s string, n int) bool {
		if len(s) != n {
			return false
		}
		for i := 0; i < n; i++ {
			if s[i] < '0' || s[i] > '9' {
				return false
			}
		}
		return true
	}
	return digits(main, 4) && (!hasSub || digits(sub, 3))
}
