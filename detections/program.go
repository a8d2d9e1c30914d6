package detections

import (
	"fmt"
	"slices"
	"sync"

	"github.com/quarry-sec/quarry/detections/sigma"
)

// cnodeKind is the kind of a compiled condition node.
type cnodeKind uint8

const (
	cLeaf cnodeKind = iota
	cAnd
	cOr
	cNot
	cAtLeast // at least n of kids
)

// cnode is a compiled condition: searches are expanded into OR-of-AND of
// leaves; "N of" into cAtLeast.
type cnode struct {
	kind cnodeKind
	kids []*cnode
	leaf *leaf
	n    int
}

// program is a rule compiled for evaluation.
type program struct {
	root *cnode
	// tagged are the searches named in the rule's search_tags, in its
	// order, evaluated on a hit to narrow the hit's techniques.
	tagged []*cnode
}

// fieldTable interns field names to small integers shared by every rule
// and engine of the process, so that an engine caches one slot per field.
var fieldTable = struct {
	sync.RWMutex
	ids   map[string]int
	names []string
}{ids: map[string]int{}}

func fieldID(name string) int {
	fieldTable.RLock()
	id, ok := fieldTable.ids[name]
	fieldTable.RUnlock()
	if ok {
		return id
	}
	fieldTable.Lock()
	defer fieldTable.Unlock()
	if id, ok := fieldTable.ids[name]; ok {
		return id
	}
	id = len(fieldTable.names)
	fieldTable.ids[name] = id
	fieldTable.names = append(fieldTable.names, name)
	return id
}

// lookupFieldID returns the id of a field name some rule reads, -1 for
// others (it does not register the name).
func lookupFieldID(name string) int {
	fieldTable.RLock()
	id, ok := fieldTable.ids[name]
	fieldTable.RUnlock()
	if !ok {
		return -1
	}
	return id
}

func fieldName(id int) string {
	fieldTable.RLock()
	defer fieldTable.RUnlock()
	return fieldTable.names[id]
}

// fieldNames returns the field names by id known so far (a snapshot: ids
// only ever get added).
func fieldNames() []string {
	fieldTable.RLock()
	defer fieldTable.RUnlock()
	return fieldTable.names[:len(fieldTable.names):len(fieldTable.names)]
}

func fieldCount() int {
	fieldTable.RLock()
	defer fieldTable.RUnlock()
	return len(fieldTable.names)
}

// compileRule compiles a parsed rule's detection.
func compileRule(sr *sigma.Rule, vc *valueCompiler) (*program, error) {
	searches := map[string]*cnode{}
	for _, name := range sr.Detection.Order {
		s := sr.Detection.Searches[name]
		or := &cnode{kind: cOr}
		for _, sel := range s.Selections {
			and := &cnode{kind: cAnd}
			for _, fm := range sel {
				l, err := vc.compileField(fm)
				if err != nil {
					return nil, &sigma.Error{File: sr.File, Line: fm.Line, Field: "detection." + name + "." + fm.Field, RuleID: sr.ID, Title: sr.Title, Err: err}
				}
				and.kids = append(and.kids, &cnode{kind: cLeaf, leaf: l})
			}
			or.kids = append(or.kids, simplify(and))
		}
		searches[name] = simplify(or)
	}
	root, err := compileExpr(sr.Detection.Condition, searches)
	if err != nil {
		return nil, &sigma.Error{File: sr.File, Line: sr.Detection.ConditionLine, Field: "detection.condition", RuleID: sr.ID, Title: sr.Title, Err: err}
	}
	p := &program{root: root}
	for _, st := range sr.SearchTags {
		p.tagged = append(p.tagged, searches[st.Search])
	}
	return p, nil
}

// eval evaluates the node against the event vs gives.
func (n *cnode) eval(vs valueSource) bool {
	switch n.kind {
	case cLeaf:
		return n.leaf.eval(vs)
	case cAnd:
		for _, k := range n.kids {
			if !k.eval(vs) {
				return false
			}
		}
		return true
	case cOr:
		for _, k := range n.kids {
			if k.eval(vs) {
				return true
			}
		}
		return false
	case cNot:
		return !n.kids[0].eval(vs)
	case cAtLeast:
		c := 0
		for _, k := range n.kids {
			if k.eval(vs) {
				if c++; c >= n.n {
					return true
				}
			}
		}
		return false
	}
	return false
}

// simplify drops one-child AND/OR nodes and, in an AND or OR, moves
// costly children (regular expressions) after cheap ones: conditions have
// no side effects, so the order is free.
func simplify(n *cnode) *cnode {
	if (n.kind == cAnd || n.kind == cOr) && len(n.kids) == 1 {
		return n.kids[0]
	}
	if n.kind == cAnd || n.kind == cOr {
		slices.SortStableFunc(n.kids, func(a, b *cnode) int { return a.cost() - b.cost() })
	}
	return n
}

// cost estimates a node's evaluation cost: 1 for plain comparisons, more
// for regular expressions and keyword searches, summed over children.
func (n *cnode) cost() int {
	if n.kind == cLeaf {
		c := 0
		if n.leaf.keyword {
			c += 100
		}
		for _, g := range n.leaf.groups {
			for i := range g {
				switch g[i].op {
				case opRegex:
					c += 30
				case opGlob:
					c += 8
				case opContains:
					c += 4
				default:
					c++
				}
			}
		}
		return c
	}
	c := 0
	for _, k := range n.kids {
		c += k.cost()
	}
	return c
}

func compileExpr(e sigma.Expr, searches map[string]*cnode) (*cnode, error) {
	switch x := e.(type) {
	case *sigma.Ident:
		n, ok := searches[x.Name]
		if !ok {
			return nil, fmt.Errorf("unknown search %q", x.Name)
		}
		return n, nil
	case *sigma.Not:
		k, err := compileExpr(x.X, searches)
		if err != nil {
			return nil, err
		}
		return &cnode{kind: cNot, kids: []*cnode{k}}, nil
	case *sigma.And, *sigma.Or:
		var xs []sigma.Expr
		kind := cAnd
		if a, ok := x.(*sigma.And); ok {
			xs = a.X
		} else {
			xs, kind = x.(*sigma.Or).X, cOr
		}
		n := &cnode{kind: kind}
		for _, sx := range xs {
			k, err := compileExpr(sx, searches)
			if err != nil {
				return nil, err
			}
			n.kids = append(n.kids, k)
		}
		return simplify(n), nil
	case *sigma.Of:
		n := &cnode{kind: cOr}
		for _, name := range x.Names {
			k, ok := searches[name]
			if !ok {
				return nil, fmt.Errorf("unknown search %q", name)
			}
			n.kids = append(n.kids, k)
		}
		switch {
		case x.All:
			n.kind = cAnd
		case x.Count > 1:
			n.kind, n.n = cAtLeast, x.Count
		}
		return simplify(n), nil
	}
	return nil, fmt.Errorf("unsupported condition %T", e)
}

// valueSource gives leaves the event's field values.
type valueSource interface {
	// value returns a field's raw and case-folded value.
	value(fid int) (raw, folded string, ok bool)
	// anyValue reports whether pred holds for some field value (keywords).
	anyValue(pred func(raw, folded string) bool) bool
	// contains answers the contains matcher numbered cid for the field
	// value being tested, when the source knows (known false: test it).
	contains(cid int32) (found, known bool)
}

func (l *leaf) eval(vs valueSource) bool {
	if l.keyword {
		return vs.anyValue(func(raw, folded string) bool { return l.test(raw, folded, true, vs) })
	}
	raw, folded, ok := vs.value(l.fid)
	return l.test(raw, folded, ok, vs)
}

// test evaluates the leaf's values against one field value.
func (l *leaf) test(raw, folded string, ok bool, vs valueSource) bool {
	for gi := range l.groups {
		matched := false
		for mi := range l.groups[gi] {
			if matchOne(&l.groups[gi][mi], raw, folded, ok, vs) {
				matched = true
				break
			}
		}
		if l.all && !matched {
			return false
		}
		if !l.all {
			return matched
		}
	}
	return l.all
}

func matchOne(m *matcher, raw, folded string, ok bool, vs valueSource) bool {
	if !ok {
		return m.matchAbsent()
	}
	switch m.op {
	case opNever:
		return false
	case opFieldRef:
		rr, rf, rok := vs.value(m.refID)
		return rok && m.matchRef(raw, folded, rr, rf)
	case opContains:
		if m.cid != 0 {
			if found, known := vs.contains(m.cid); known {
				return found
			}
		}
	case opRegex:
		if regexRuledOut(m, raw, vs) {
			return false
		}
	}
	return m.matchString(raw, folded)
}

// regexRuledOut reports whether the scan of the value shows that the
// regular expression cannot match: one of its literal sets has none of its
// strings in the value (each string looked for by the scan; a set with a
// string the scan does not look for is left to matchString).
func regexRuledOut(m *matcher, raw string, vs valueSource) bool {
	if len(m.reSetIDs) == 0 {
		return false
	}
	if ans, ok, possible := m.shape.decided(raw); (ok && !ans) || !possible {
		return true
	}
	for _, ids := range m.reSetIDs {
		hit, unknown := false, false
		for _, id := range ids {
			found, known := vs.contains(id)
			if found {
				hit = true
				break
			}
			if !known {
				unknown = true
			}
		}
		if !hit && !unknown {
			return true
		}
	}
	return false
}
