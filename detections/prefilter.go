package detections

import "slices"

// Prefilter: for each rule, up to two sets of (field, literal) pairs such
// that the rule can only match an event where, for each set, at least one
// literal occurs in the case-folded value of its field. The engine finds
// the literals of a log source's rules with one gram filter per field (see
// gramFilter), and evaluates only the rules whose sets all had a literal
// (plus the rules without a set: pure regexes, negations, numeric tests).

// maxLiteral caps a literal's length: any substring of a required literal is
// required too, and short literals keep the automaton small.
const maxLiteral = 16

type litReq struct {
	fid int // kwField: in any field (keyword search)
	lit string
}

// kwField is the field of keyword literals: they may occur in any value.
const kwField = -1

// required returns the literal requirements of n; ok is false when n can
// match without any literal occurring.
func required(n *cnode) (reqs []litReq, ok bool) {
	switch n.kind {
	case cLeaf:
		return leafRequired(n.leaf)
	case cAnd:
		var best []litReq
		found := false
		for _, k := range n.kids {
			r, ok := required(k)
			if ok && (!found || better(r, best)) {
				best, found = r, true
			}
		}
		return best, found
	case cOr, cAtLeast:
		var all []litReq
		for _, k := range n.kids {
			r, ok := required(k)
			if !ok {
				return nil, false
			}
			all = append(all, r...)
		}
		return all, len(all) > 0
	}
	return nil, false
}

func leafRequired(l *leaf) ([]litReq, bool) {
	fid := l.fid
	if l.keyword {
		fid = kwField
	}
	var best []litReq
	found := false
	var lits []string
	for _, g := range l.groups {
		var rs []litReq
		ok := len(g) > 0
		for i := range g {
			var lok bool
			lits, lok = g[i].appendLiterals(lits[:0])
			if !lok {
				ok = false
				break
			}
			for _, lit := range lits {
				if len(lit) > maxLiteral {
					lit = lit[len(lit)-maxLiteral:]
				}
				rs = append(rs, litReq{fid: fid, lit: lit})
			}
		}
		if !l.all {
			return rs, ok
		}
		if ok && (!found || better(rs, best)) {
			best, found = rs, true
		}
	}
	return best, found
}

// requiredGroups returns up to two literal requirement sets of a rule's
// condition, each necessary on its own: the rule can only match an event
// where each set has a literal occurring. A conjunction (the selections of
// "a and b", the field matchers of one selection) gives the best two of
// its parts, so that a rule needing both a program name and an argument is
// a candidate only when both occur; anything else gives its one set. None:
// the rule must always be evaluated.
func requiredGroups(n *cnode) [][]litReq {
	valid := func(rs []litReq, ok bool) bool {
		return ok && !slices.ContainsFunc(rs, func(q litReq) bool { return q.lit == "" })
	}
	if n.kind == cAnd {
		var sets [][]litReq
		for _, k := range n.kids {
			if r, ok := required(k); valid(r, ok) {
				sets = append(sets, r)
			}
		}
		slices.SortStableFunc(sets, func(a, b []litReq) int {
			switch {
			case better(a, b):
				return -1
			case better(b, a):
				return 1
			}
			return 0
		})
		return sets[:min(len(sets), 2)]
	}
	if r, ok := required(n); valid(r, ok) {
		return [][]litReq{r}
	}
	return nil
}

// better prefers the requirement set whose shortest literal is longer
// (rarer), then the smaller set.
func better(a, b []litReq) bool {
	ma, mb := minLen(a), minLen(b)
	if ma != mb {
		return ma > mb
	}
	return len(a) < len(b)
}

func minLen(rs []litReq) int {
	m := 1 << 30
	for _, r := range rs {
		if len(r.lit) < m {
			m = len(r.lit)
		}
	}
	return m
}
