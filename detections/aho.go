package detections

// aho is an Aho-Corasick automaton over byte strings, as a dense DFA over
// byte classes (bytes that occur in no pattern share one class), so a scan
// costs one table load per input byte.
type aho struct {
	class  [256]uint16
	nclass int
	next   []uint32 // state*nclass + class → state
	out    []int32  // state → index into outs, -1 when no pattern ends there
	outs   [][]int32
}

// newAho builds the automaton for pats; pattern ids are their indexes.
func newAho(pats []string) *aho {
	a := &aho{}
	// Byte classes: each byte used by a pattern gets its own class; class 0
	// is every other byte.
	used := [256]bool{}
	for _, p := range pats {
		for i := 0; i < len(p); i++ {
			used[p[i]] = true
		}
	}
	a.nclass = 1
	for b := 0; b < 256; b++ {
		if used[b] {
			a.class[b] = uint16(a.nclass)
			a.nclass++
		}
	}
	// Trie with sparse children while building.
	type tnode struct {
		kids map[uint16]uint32
		outs []int32
	}
	trie := []tnode{{kids: map[uint16]uint32{}}}
	for id, p := range pats {
		s := uint32(0)
		for i := 0; i < len(p); i++ {
			c := a.class[p[i]]
			nx, ok := trie[s].kids[c]
			if !ok {
				nx = uint32(len(trie))
				trie = append(trie, tnode{kids: map[uint16]uint32{}})
				trie[s].kids[c] = nx
			}
			s = nx
		}
		trie[s].outs = append(trie[s].outs, int32(id))
	}
	n := len(trie)
	nc := a.nclass
	a.next = make([]uint32, n*nc)
	fail := make([]uint32, n)
	outs := make([][]int32, n)
	for i := range trie {
		outs[i] = trie[i].outs
	}
	// BFS: dense transitions with failure links folded in.
	queue := make([]uint32, 0, n)
	for c := 0; c < nc; c++ {
		if nx, ok := trie[0].kids[uint16(c)]; ok {
			a.next[c] = nx
			fail[nx] = 0
			queue = append(queue, nx)
		}
	}
	for qi := 0; qi < len(queue); qi++ {
		s := queue[qi]
		outs[s] = append(outs[s], outs[fail[s]]...)
		for c := 0; c < nc; c++ {
			if nx, ok := trie[s].kids[uint16(c)]; ok {
				a.next[int(s)*nc+c] = nx
				fail[nx] = a.next[int(fail[s])*nc+c]
				queue = append(queue, nx)
			} else {
				a.next[int(s)*nc+c] = a.next[int(fail[s])*nc+c]
			}
		}
	}
	a.out = make([]int32, n)
	for s := range outs {
		a.out[s] = -1
		if len(outs[s]) > 0 {
			a.out[s] = int32(len(a.outs))
			a.outs = append(a.outs, outs[s])
		}
	}
	return a
}

// states returns the number of automaton states.
func (a *aho) states() int { return len(a.out) }
