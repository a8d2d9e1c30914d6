package detections

import "strings"

// flatProgram is a rule set's conditions laid out for evaluation: every
// node of every rule in one array (each rule's nodes in preorder, a node's
// subtree ending at its end index), every matcher of their leaves in
// another. Evaluating a dozen candidate rules an event then reads a few
// contiguous cache lines instead of chasing a tree of separately allocated
// nodes and 224-byte matchers, whose first touch missed the cache on most
// nodes.
type flatProgram struct {
	nodes []flatNode
	ms    []flatMatch
	// groupEnd: a leaf's value groups are ms[mlo:groupEnd[g0]],
	// ms[groupEnd[g0]:groupEnd[g0+1]], … up to groupEnd[g1-1].
	groupEnd []int32
	roots    []int32 // by rule index in the set: the rule's root node
}

// flatNode is one condition node (see cnode).
type flatNode struct {
	kind cnodeKind
	all  bool  // leaf: every group must match (|all)
	n    int32 // cAtLeast: how many kids must hold
	kids int32 // number of kids
	end  int32 // index of the node after this subtree
	fid  int32 // leaf: field id
	mlo  int32 // leaf: first matcher
	g0   int32 // leaf: groupEnd[g0:g1]
	g1   int32
	// kw is a keyword leaf, evaluated as compiled (it reads every
	// value of the event).
	kw *leaf
}

// flatMatch is one matcher: the common string comparisons inline, the
// others by the compiled matcher.
type flatMatch struct {
	op    op
	cased bool
	// lit is the literal id of a contains the rule set's scan answers
	// (-1: none).
	lit int32
	// o1, o2: offsets of two rare bytes of s, for a contains the scan
	// does not answer (see indexRare)
	o1, o2 uint8
	s      string
	m      *matcher
}

// flatten lays out the conditions of rules; litOf maps a contains matcher's
// cid to the literal id the scan finds it by (-1 when none).
func flatten(rules []*Rule, litOf func(cid int32) int32) flatProgram {
	// Sized first: a rule set's program has tens of thousands of
	// matchers, which growing the arrays would copy again and again.
	var nodes, ms, groups int
	var count func(n *cnode)
	count = func(n *cnode) {
		nodes++
		if n.kind == cLeaf && !n.leaf.keyword {
			groups += len(n.leaf.groups)
			for _, g := range n.leaf.groups {
				ms += len(g)
			}
		}
		for _, k := range n.kids {
			count(k)
		}
	}
	for _, r := range rules {
		count(r.program().root)
	}
	p := flatProgram{nodes: make([]flatNode, 0, nodes), ms: make([]flatMatch, 0, ms),
		groupEnd: make([]int32, 0, groups), roots: make([]int32, 0, len(rules))}
	var add func(n *cnode) int32
	add = func(n *cnode) int32 {
		i := int32(len(p.nodes))
		p.nodes = append(p.nodes, flatNode{kind: n.kind, n: int32(n.n), kids: int32(len(n.kids))})
		if n.kind == cLeaf {
			l := n.leaf
			fn := flatNode{kind: cLeaf, all: l.all, fid: int32(l.fid)}
			if l.keyword {
				fn.kw = l
			} else {
				fn.mlo, fn.g0 = int32(len(p.ms)), int32(len(p.groupEnd))
				for _, g := range l.groups {
					for mi := range g {
						m := &g[mi]
						fm := flatMatch{op: m.op, cased: m.cased, s: m.s, m: m, lit: -1}
						if m.op == opContains && m.cid != 0 {
							fm.lit = litOf(m.cid)
						}
						if m.op == opContains && len(m.s) >= 2 {
							fm.o1, fm.o2 = rarePair(m.s)
						}
						p.ms = append(p.ms, fm)
					}
					p.groupEnd = append(p.groupEnd, int32(len(p.ms)))
				}
				fn.g1 = int32(len(p.groupEnd))
			}
			fn.end = i + 1
			p.nodes[i] = fn
			return i
		}
		for _, k := range n.kids {
			add(k)
		}
		p.nodes[i].end = int32(len(p.nodes))
		return i
	}
	for _, r := range rules {
		p.roots = append(p.roots, add(r.program().root))
	}
	return p
}

// evalFlat evaluates node i of the current rule set's program.
func (e *Engine) evalFlat(p *flatProgram, i int32) bool {
	n := &p.nodes[i]
	switch n.kind {
	case cLeaf:
		return e.evalFlatLeaf(p, n)
	case cAnd:
		for j := i + 1; j < n.end; j = p.nodes[j].end {
			if !e.evalFlat(p, j) {
				return false
			}
		}
		return true
	case cOr:
		for j := i + 1; j < n.end; j = p.nodes[j].end {
			if e.evalFlat(p, j) {
				return true
			}
		}
		return false
	case cNot:
		return !e.evalFlat(p, i+1)
	case cAtLeast:
		c, left := int32(0), n.kids
		for j := i + 1; j < n.end; j = p.nodes[j].end {
			left--
			if e.evalFlat(p, j) {
				if c++; c >= n.n {
					return true
				}
			}
			if c+left < n.n {
				return false
			}
		}
		return false
	}
	return false
}

func (e *Engine) evalFlatLeaf(p *flatProgram, n *flatNode) bool {
	if n.kw != nil {
		return n.kw.eval(e)
	}
	raw, folded, ok := e.value(int(n.fid))
	lo := n.mlo
	for g := n.g0; g < n.g1; g++ {
		hi := p.groupEnd[g]
		matched := false
		for k := lo; k < hi; k++ {
			if e.flatMatch(&p.ms[k], raw, folded, ok) {
				matched = true
				break
			}
		}
		lo = hi
		if n.all && !matched {
			return false
		}
		if !n.all {
			return matched
		}
	}
	return n.all
}

func (e *Engine) flatMatch(fm *flatMatch, raw, folded string, ok bool) bool {
	if ok {
		v := folded
		if fm.cased {
			v = raw
		}
		switch fm.op {
		case opEq:
			return v == fm.s
		case opPrefix:
			return strings.HasPrefix(v, fm.s)
		case opSuffix:
			return strings.HasSuffix(v, fm.s)
		case opContains:
			if fm.lit >= 0 {
				return e.litSeen[fm.lit] == e.gen
			}
			if fm.o1 == fm.o2 {
				return strings.Contains(v, fm.s)
			}
			return indexRare(v, fm.s, fm.o1, fm.o2) >= 0
		}
	}
	return matchOne(fm.m, raw, folded, ok, e)
}
