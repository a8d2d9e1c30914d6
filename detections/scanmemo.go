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
	lits         map[string][]int32 // folded value → literal ids found in it
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
		e.memoSet = s
		clear(e.memos)
	}
	if fid >= len(e.memos) {
		e.memos = append(e.memos, make([]*fieldMemo, fid+1-len(e.memos))...)
	}
	m := e.memos[fid]
	if m == nil {
		m = &fieldMemo{lits: map[string][]int32{}}
		e.memos[fid] = m
	}
	return m
}

// lookup returns the remembered literals of v.
func (m *fieldMemo) lookup(v string) ([]int32, bool) {
	lits, ok := m.lits[v]
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
	m.lits[strings.Clone(v)] = append([]int32(nil), lits...)
}
