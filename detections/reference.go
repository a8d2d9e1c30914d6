package detections

import (
	"fmt"
	"path"
	"strings"

	"github.com/quarry-sec/quarry/detections/sigma"
	"github.com/quarry-sec/quarry/telemetry"
)

// Reference is the slow oracle the Engine is checked against: it walks each
// rule's parsed Sigma condition for every event, looks every field up and
// case-folds it again each time it is used, with no prefilter, no automaton,
// no candidate selection and no per-event caching. Only the meaning of a
// single value (its modifiers) comes from the same compiler as the Engine's;
// everything that makes the Engine fast is absent.
//
// Use it in tests and benchmarks to assert that the Engine's hits are right,
// never for detection: it is orders of magnitude slower. A Reference is not
// safe for concurrent use.
type Reference struct {
	leaves map[*sigma.FieldMatch]*leaf
}

// NewReference returns a reference evaluator.
func NewReference() *Reference {
	return &Reference{leaves: map[*sigma.FieldMatch]*leaf{}}
}

// Match reports whether r matches ev. r must come from the Load functions.
// The error is for a rule whose values do not compile (which cannot happen
// for a rule that loaded).
func (x *Reference) Match(r *Rule, ev *telemetry.Event) (bool, error) {
	if r == nil || r.Sigma == nil {
		return false, fmt.Errorf("reference: rule without a parsed Sigma rule")
	}
	if !applies(r.Logsource, keyOf(ev)) {
		return false, nil
	}
	return x.expr(r, r.Sigma.Detection.Condition, ev)
}

func (x *Reference) expr(r *Rule, e sigma.Expr, ev *telemetry.Event) (bool, error) {
	sr := r.Sigma
	switch e := e.(type) {
	case *sigma.Ident:
		s, ok := sr.Detection.Searches[e.Name]
		if !ok {
			return false, fmt.Errorf("reference: rule %s: unknown search %q", r.ID, e.Name)
		}
		return x.search(r, s, ev)
	case *sigma.Not:
		m, err := x.expr(r, e.X, ev)
		return !m, err
	case *sigma.And:
		for _, k := range e.X {
			if m, err := x.expr(r, k, ev); err != nil || !m {
				return false, err
			}
		}
		return true, nil
	case *sigma.Or:
		for _, k := range e.X {
			if m, err := x.expr(r, k, ev); err != nil || m {
				return m, err
			}
		}
		return false, nil
	case *sigma.Of:
		return x.of(r, e, ev)
	}
	return false, fmt.Errorf("reference: rule %s: unsupported condition %T", r.ID, e)
}

// of evaluates "1 of", "N of" and "all of" over the searches whose names
// match the pattern ("them": every search not starting with _).
func (x *Reference) of(r *Rule, e *sigma.Of, ev *telemetry.Event) (bool, error) {
	n := 0
	for name, s := range r.Sigma.Detection.Searches {
		if e.Pattern != "them" {
			if ok, _ := path.Match(e.Pattern, name); !ok {
				continue
			}
		} else if strings.HasPrefix(name, "_") {
			continue
		}
		m, err := x.search(r, s, ev)
		if err != nil {
			return false, err
		}
		if m {
			n++
		} else if e.All {
			return false, nil
		}
	}
	if e.All {
		return true, nil
	}
	return n >= e.Count, nil
}

// search holds when one of its selections has every field matching.
func (x *Reference) search(r *Rule, s *sigma.Search, ev *telemetry.Event) (bool, error) {
	for _, sel := range s.Selections {
		ok := true
		for _, fm := range sel {
			m, err := x.field(r, fm, ev)
			if err != nil {
				return false, err
			}
			if !m {
				ok = false
				break
			}
		}
		if ok {
			return true, nil
		}
	}
	return false, nil
}

func (x *Reference) field(r *Rule, fm *sigma.FieldMatch, ev *telemetry.Event) (bool, error) {
	l, ok := x.leaves[fm]
	if !ok {
		vc := &valueCompiler{fieldID: fieldID, placeholders: r.placeholders, plain: true}
		var err error
		if l, err = vc.compileField(fm); err != nil {
			return false, fmt.Errorf("reference: rule %s: %w", r.ID, err)
		}
		x.leaves[fm] = l
	}
	vs := referenceSource{ev}
	if l.keyword {
		return vs.anyValue(func(raw, folded string) bool { return l.test(raw, folded, true, vs) }), nil
	}
	raw, folded, present := vs.value(l.fid)
	return l.test(raw, folded, present, vs), nil
}

// referenceSource looks fields up and folds them on every use.
type referenceSource struct{ ev *telemetry.Event }

func (n referenceSource) value(fid int) (string, string, bool) {
	v, ok, _ := lookupField(n.ev, fieldName(fid), nil)
	if !ok {
		return "", "", false
	}
	return v, string(appendFold(nil, v)), true
}

func (n referenceSource) anyValue(pred func(raw, folded string) bool) bool {
	return eachValue(n.ev, func(v string) bool { return pred(v, string(appendFold(nil, v))) })
}

// contains is never known: the reference tests every value itself.
func (n referenceSource) contains(int32) (bool, bool) { return false, false }
