package detections

import (
	"regexp/syntax"
)

// regexLiterals returns case-folded strings of which every match of the
// regular expression contains at least one, or ok false when there is no
// such set (for the prefilter).
func regexLiterals(expr string) (lits []string, ok bool) {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil, false
	}
	return reRequired(re.Simplify(), 0)
}

func reRequired(re *syntax.Regexp, depth int) ([]string, bool) {
	if depth > 50 {
		return nil, false
	}
	switch re.Op {
	case syntax.OpLiteral:
		if len(re.Rune) == 0 {
			return nil, false
		}
		return []string{string(appendFold(nil, string(re.Rune)))}, true
	case syntax.OpCapture, syntax.OpPlus:
		return reRequired(re.Sub[0], depth+1)
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return reRequired(re.Sub[0], depth+1)
		}
	case syntax.OpAlternate:
		var all []string
		for _, s := range re.Sub {
			l, ok := reRequired(s, depth+1)
			if !ok {
				return nil, false
			}
			all = append(all, l...)
		}
		return all, len(all) > 0
	case syntax.OpConcat:
		var best []string
		found := false
		consider := func(l []string) {
			if !found || betterLits(l, best) {
				best, found = l, true
			}
		}
		var run []rune
		for _, s := range re.Sub {
			if s.Op == syntax.OpLiteral {
				run = append(run, s.Rune...)
				continue
			}
			if len(run) > 0 {
				consider([]string{string(appendFold(nil, string(run)))})
				run = nil
			}
			if l, ok := reRequired(s, depth+1); ok {
				consider(l)
			}
		}
		if len(run) > 0 {
			consider([]string{string(appendFold(nil, string(run)))})
		}
		return best, found
	}
	return nil, false
}

func betterLits(a, b []string) bool {
	ma, mb := 1<<30, 1<<30
	for _, s := range a {
		ma = min(ma, len(s))
	}
	for _, s := range b {
		mb = min(mb, len(s))
	}
	if ma != mb {
		return ma > mb
	}
	return len(a) < len(b)
}
