package detections

import (
	"regexp/syntax"
	"slices"
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
		for _, l := range concatSets(re, depth) {
			if !found || betterLits(l, best) {
				best, found = l, true
			}
		}
		return best, found
	}
	return nil, false
}

// concatSets returns, for a concatenation, every literal set it finds
// necessary: each holds a string that every match contains.
func concatSets(re *syntax.Regexp, depth int) [][]string {
	var sets [][]string
	// run is the set of strings the items since the last break can
	// produce (their cross product), when small and exact.
	run := []string{""}
	flush := func() {
		if len(run) > 0 && run[0] != "" {
			sets = append(sets, run)
		}
		run = []string{""}
	}
	extend := func(set []string) {
		if p, ok := crossProduct(run, set); ok {
			run = p
		} else {
			flush()
			run = set
		}
	}
	for _, s := range re.Sub {
		if set, ok := reExpand(s, 0); ok {
			extend(set)
			continue
		}
		// x+ and x{n,}: the first copy of x continues the run, which
		// ends there.
		if (s.Op == syntax.OpPlus || (s.Op == syntax.OpRepeat && s.Min >= 1)) && len(s.Sub) == 1 {
			if set, ok := reExpand(s.Sub[0], 0); ok {
				extend(set)
				flush()
				continue
			}
		}
		flush()
		if l, ok := reRequired(s, depth+1); ok {
			sets = append(sets, l)
		}
	}
	flush()
	return sets
}

// regexLiteralSets returns literal sets (case-folded) that every match of
// the regular expression satisfies all of: it contains a string of each.
// The sets with the longest shortest string come first.
func regexLiteralSets(expr string) [][]string {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil
	}
	re = re.Simplify()
	for re.Op == syntax.OpCapture {
		re = re.Sub[0]
	}
	var sets [][]string
	if re.Op == syntax.OpConcat {
		sets = concatSets(re, 0)
	} else if l, ok := reRequired(re, 0); ok {
		sets = [][]string{l}
	}
	// A repeated sub-expression (`\+.*\+.*\+`, `\{.*\{`) gives the same
	// set again: testing it once is enough.
	uniq := sets[:0]
	for _, set := range sets {
		if !slices.ContainsFunc(uniq, func(u []string) bool { return slices.Equal(u, set) }) {
			uniq = append(uniq, set)
		}
	}
	sets = uniq
	slices.SortStableFunc(sets, func(a, b []string) int {
		if betterLits(a, b) {
			return -1
		}
		if betterLits(b, a) {
			return 1
		}
		return 0
	})
	return sets
}

// Limits of the exact expansion of small sub-expressions.
const (
	maxExpandClass = 10 // characters of a class ([ "'], \d, \s)
	maxExpandSet   = 64 // strings of a set
)

// reExpand returns the case-folded strings re matches, when they are few
// and re is made only of literals, small ASCII classes, concatenations and
// alternations of them.
func reExpand(re *syntax.Regexp, depth int) ([]string, bool) {
	if depth > 20 {
		return nil, false
	}
	switch re.Op {
	case syntax.OpLiteral:
		if len(re.Rune) == 0 {
			return nil, false
		}
		return []string{string(appendFold(nil, string(re.Rune)))}, true
	case syntax.OpCharClass:
		n := 0
		for i := 0; i+1 < len(re.Rune); i += 2 {
			lo, hi := re.Rune[i], re.Rune[i+1]
			if hi >= 0x80 {
				return nil, false
			}
			n += int(hi-lo) + 1
		}
		if n == 0 || n > maxExpandClass {
			return nil, false
		}
		var out []string
		seen := map[string]bool{}
		for i := 0; i+1 < len(re.Rune); i += 2 {
			for r := re.Rune[i]; r <= re.Rune[i+1]; r++ {
				f := string(appendFold(nil, string(r)))
				if !seen[f] {
					seen[f] = true
					out = append(out, f)
				}
			}
		}
		return out, true
	case syntax.OpCapture:
		return reExpand(re.Sub[0], depth+1)
	case syntax.OpRepeat:
		if re.Min != re.Max || re.Min < 1 || re.Min > 4 {
			return nil, false
		}
		sub, ok := reExpand(re.Sub[0], depth+1)
		if !ok {
			return nil, false
		}
		out := []string{""}
		for range re.Min {
			if out, ok = crossProduct(out, sub); !ok {
				return nil, false
			}
		}
		return out, true
	case syntax.OpConcat:
		out := []string{""}
		for _, s := range re.Sub {
			sub, ok := reExpand(s, depth+1)
			if !ok {
				return nil, false
			}
			if out, ok = crossProduct(out, sub); !ok {
				return nil, false
			}
		}
		return out, true
	case syntax.OpAlternate:
		var out []string
		for _, s := range re.Sub {
			sub, ok := reExpand(s, depth+1)
			if !ok {
				return nil, false
			}
			out = append(out, sub...)
		}
		if len(out) > maxExpandSet {
			return nil, false
		}
		return out, true
	}
	return nil, false
}

// crossProduct returns every a+b, or ok false when there would be too many.
func crossProduct(as, bs []string) ([]string, bool) {
	if len(as)*len(bs) > maxExpandSet {
		return nil, false
	}
	out := make([]string, 0, len(as)*len(bs))
	for _, a := range as {
		for _, b := range bs {
			out = append(out, a+b)
		}
	}
	return out, true
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
