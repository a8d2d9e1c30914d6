package detections

// Prefilter: for each rule, a set of (field, literal) pairs such that the
// rule can only match an event where at least one literal occurs in the
// case-folded value of its field. The engine finds every literal of a log
// source's rules in one Aho-Corasick pass over the fields they name, and
// evaluates only the rules one of whose literals occurred (plus the rules
// without such a set: pure regexes, negations, keywords, numeric tests).

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
	for _, g := range l.groups {
		var rs []litReq
		ok := len(g) > 0
		for i := range g {
			lits, lok := g[i].literals()
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
