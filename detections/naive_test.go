package detections

import (
	"path"
	"strings"
	"sync"

	"github.com/quarry-sec/quarry/detections/sigma"
	"github.com/quarry-sec/quarry/telemetry"
)

// The naive reference evaluator: walks the parsed Sigma rule for every
// event, looks fields up and folds them each time, no prefilter, no
// caching. Value matchers come from the same compiler as the engine's (they
// define the modifiers' meaning); everything else is independent.

var naiveLeaves sync.Map // *sigma.FieldMatch → *leaf

func naiveLeaf(fm *sigma.FieldMatch) *leaf {
	if l, ok := naiveLeaves.Load(fm); ok {
		return l.(*leaf)
	}
	vc := &valueCompiler{fieldID: fieldID, placeholders: naivePlaceholders}
	l, err := vc.compileField(fm)
	if err != nil {
		panic(err) // the rule compiled at load time, so this cannot fail
	}
	naiveLeaves.Store(fm, l)
	return l
}

var naivePlaceholders = map[string][]string{"admins": {"root", `CORP\adm*`}}

// naiveMatch reports whether r matches ev.
func naiveMatch(r *Rule, ev *telemetry.Event) bool {
	if !naiveApplies(r.Logsource, ev) {
		return false
	}
	return naiveExpr(r.Sigma, r.Sigma.Detection.Condition, ev)
}

func naiveApplies(ls sigma.Logsource, ev *telemetry.Event) bool {
	return applies(ls, keyOf(ev))
}

func naiveExpr(sr *sigma.Rule, e sigma.Expr, ev *telemetry.Event) bool {
	switch x := e.(type) {
	case *sigma.Ident:
		return naiveSearch(sr.Detection.Searches[x.Name], ev)
	case *sigma.Not:
		return !naiveExpr(sr, x.X, ev)
	case *sigma.And:
		for _, k := range x.X {
			if !naiveExpr(sr, k, ev) {
				return false
			}
		}
		return true
	case *sigma.Or:
		for _, k := range x.X {
			if naiveExpr(sr, k, ev) {
				return true
			}
		}
		return false
	case *sigma.Of:
		n := 0
		for name := range sr.Detection.Searches {
			if x.Pattern != "them" {
				if ok, _ := path.Match(x.Pattern, name); !ok {
					continue
				}
			} else if strings.HasPrefix(name, "_") {
				continue
			}
			if naiveSearch(sr.Detection.Searches[name], ev) {
				n++
			} else if x.All {
				return false
			}
		}
		if x.All {
			return true
		}
		return n >= x.Count
	}
	return false
}

func naiveSearch(s *sigma.Search, ev *telemetry.Event) bool {
	for _, sel := range s.Selections {
		ok := true
		for _, fm := range sel {
			if !naiveField(fm, ev) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

type naiveSource struct{ ev *telemetry.Event }

func (n naiveSource) value(fid int) (string, string, bool) {
	v, ok, _ := lookupField(n.ev, fieldName(fid), nil)
	if !ok {
		return "", "", false
	}
	return v, string(appendFold(nil, v)), true
}

func (n naiveSource) anyValue(pred func(raw, folded string) bool) bool {
	return eachValue(n.ev, func(v string) bool { return pred(v, string(appendFold(nil, v))) })
}

func naiveField(fm *sigma.FieldMatch, ev *telemetry.Event) bool {
	l := naiveLeaf(fm)
	vs := naiveSource{ev}
	if l.keyword {
		return vs.anyValue(func(raw, folded string) bool { return l.test(raw, folded, true, vs) })
	}
	raw, folded, ok := vs.value(l.fid)
	return l.test(raw, folded, ok, vs)
}
