package detections

import "strings"

// Most fields of process events repeat from event to event (Image,
// ParentImage, OriginalFileName, User, IntegrityLevel, Company…): the
// engine remembers, per field, which literals the automaton found in a
// value and answers the next occurrence with one map lookup instead of a
// scan. A field whose values rarely repeat (CommandLine, ProcessGuid) is
// detected and no longer remembered, so it costs no inserts.

const (
	// memoMaxEntries bounds one field's memo; a full memo is cleared.
	memoMaxEntries = 4096
	// memoProbe lookups decide whether a field is worth remembering: it
	// stays remembered while at least half of them hit.
	memoProbe = 1024
)

// fieldMemo is one field's memo in one engine for one rule set.
type fieldMemo struct {
	lits map[string]memoEntry // folded value → literal ids found in it
	// last is the entry last looked up or stored (lastOK): a field often
	// has the value it had in the event before (the same parent, user,
	// integrity level), which one comparison then answers.
	last         memoEntry
	lastOK       bool
	hits, misses int
	off          bool // values do not repeat: scan always
	// grams of the first values scanned, for anchoring the field's
	// literals on the grams its values hold least (see ruleSet.reanchor)
	grams   *gramCounts
	sampled int32
}

// memoFor returns the memo of field fid for the current rule set.
func (e *Engine) memoFor(s *ruleSet, fid int) *fieldMemo {
	if e.memoSet != s {
		if e.memoSet != nil {
			if e.memosBySet == nil {
				e.memosBySet = map[*ruleSet][]*fieldMemo{}
			}
			e.memosBySet[e.memoSet] = e.memos
		}
		e.memoSet, e.memos = s, e.memosBySet[s]
	}
	if fid >= len(e.memos) {
		e.memos = append(e.memos, make([]*fieldMemo, fid+1-len(e.memos))...)
	}
	m := e.memos[fid]
	if m == nil {
		m = &fieldMemo{lits: map[string]memoEntry{}}
		e.memos[fid] = m
	}
	return m
}

// lookup returns the remembered literals of v.
func (m *fieldMemo) lookup(v string) ([]int32, bool) {
	var lits []int32
	ok := m.lastOK && m.last.key == v
	if ok {
		lits = m.last.lits
	} else if ent, found := m.lits[v]; found {
		lits, ok = ent.lits, true
		m.last, m.lastOK = ent, true
	}
	if ok {
		m.hits++
	} else {
		m.misses++
	}
	if m.hits+m.misses == memoProbe && m.hits < m.misses {
		m.off = true
		m.lits = nil
	}
	return lits, ok
}

// store remembers the literals found in v (copied).
func (m *fieldMemo) store(v string, lits []int32) {
	if m.off {
		return
	}
	if len(m.lits) >= memoMaxEntries {
		clear(m.lits)
	}
	ent := memoEntry{key: strings.Clone(v), lits: append([]int32(nil), lits...)}
	m.lits[ent.key] = ent
	m.last, m.lastOK = ent, true
}

// memoEntry is a remembered value (a copy) and the literals found in it.
type memoEntry struct {
	key  string
	lits []int32
}
