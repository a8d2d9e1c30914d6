package detections

import (
	"slices"
	"sync"
	"time"
	"unsafe"

	"github.com/quarry-sec/quarry/telemetry"
)

// Hit is one rule matching one event: what the analyst acts on.
type Hit struct {
	Rule *Rule
	// Techniques and Tactics are the rule's (shared: do not modify). One
	// hit may carry several techniques.
	Techniques []Technique
	Tactics    []Tactic
	// Event is the event matched. It is the caller's pointer: copy what
	// you keep beyond the emit call if the caller reuses events.
	Event *telemetry.Event
	Time  time.Time // when the event happened
}

// Engine matches events against compiled rules. An Engine is not safe for
// concurrent use: give each goroutine its own with Clone (clones share the
// compiled rules and per-log-source matchers).
type Engine struct {
	c *compiled

	lastKey logKey
	lastSet *ruleSet

	// per-event scratch
	ev      *telemetry.Event
	gen     uint32
	slots   []slot
	arena   []byte
	numBuf  []byte
	litSeen []uint64
	ruleHit []uint32
	cands   []int32
	// every field value, raw and folded, for keyword searches; valid
	// when allGen == gen
	allGen  uint32
	allVals []rawFolded
	// literals found in one field, and the per-field memos of them
	found   []int32
	memoSet *ruleSet
	memos   []*fieldMemo // by field id
	// scanSeen[lit] == scanGen: lit already found by the current scan
	scanSeen []uint32
	scanGen  uint32
}

type rawFolded struct{ raw, folded string }

type slot struct {
	gen    uint32
	ok     bool
	raw    string
	folded string
}

// compiled is the part of an Engine shared by its clones.
type compiled struct {
	rules []*Rule
	mu    sync.Mutex
	sets  map[logKey]*ruleSet
}

// ruleSet is the matcher for one log key: the rules that apply, their
// literals in one automaton, and the rules that must always be evaluated.
type ruleSet struct {
	rules      []*Rule
	ac         *aho
	litRules   [][]litRule // literal id → the rules requiring it, and in which field
	always     []int32
	scanFields []int
}

// litRule says that rule needs a literal in field fid.
type litRule struct {
	rule int32
	fid  int32
}

// NewEngine compiles rules into an engine. Rules must come from the Load
// functions (they carry their compiled programs); others are ignored.
func NewEngine(rules []*Rule) *Engine {
	var rs []*Rule
	for _, r := range rules {
		if r != nil && r.prog != nil {
			rs = append(rs, r)
		}
	}
	return &Engine{c: &compiled{rules: rs, sets: map[logKey]*ruleSet{}}}
}

// Clone returns an engine sharing e's compiled rules, for another goroutine.
func (e *Engine) Clone() *Engine { return &Engine{c: e.c} }

// Rules returns the engine's rules (shared: do not modify).
func (e *Engine) Rules() []*Rule { return e.c.rules }

// set returns the matcher for a log key, building it on first use.
func (c *compiled) set(k logKey) *ruleSet {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.sets[k]; ok {
		return s
	}
	s := buildSet(c.rules, k)
	c.sets[k] = s
	return s
}

// Prepare builds the matchers for the log keys of the given sample events
// ahead of time (Match otherwise builds them on first sight).
func (e *Engine) Prepare(samples ...*telemetry.Event) {
	for _, ev := range samples {
		e.c.set(keyOf(ev))
	}
}

func buildSet(rules []*Rule, k logKey) *ruleSet {
	s := &ruleSet{}
	litIdx := map[string]int32{}
	var lits []string
	fields := map[int]bool{}
	for _, r := range rules {
		if !applies(r.Logsource, k) {
			continue
		}
		ri := int32(len(s.rules))
		s.rules = append(s.rules, r)
		reqs, ok := required(r.prog.root)
		if !ok {
			s.always = append(s.always, ri)
			continue
		}
		for _, q := range reqs {
			id, seen := litIdx[q.lit]
			if !seen {
				id = int32(len(lits))
				litIdx[q.lit] = id
				lits = append(lits, q.lit)
				s.litRules = append(s.litRules, nil)
			}
			lr := litRule{rule: ri, fid: int32(q.fid)}
			if !slices.Contains(s.litRules[id], lr) {
				s.litRules[id] = append(s.litRules[id], lr)
			}
			if !fields[q.fid] {
				fields[q.fid] = true
				s.scanFields = append(s.scanFields, q.fid)
			}
		}
	}
	slices.Sort(s.scanFields)
	s.ac = newAho(lits)
	return s
}

// Match evaluates ev against every rule whose log source applies to it and
// calls emit for each hit, in rule order. It returns the number of hits.
// Match allocates nothing on its hot path once warmed up.
func (e *Engine) Match(ev *telemetry.Event, emit func(Hit)) int {
	k := keyOf(ev)
	s := e.lastSet
	if s == nil || k != e.lastKey {
		s = e.c.set(k)
		e.lastKey, e.lastSet = k, s
	}
	if len(s.rules) == 0 {
		return 0
	}
	e.begin(ev, s)
	for _, fid := range s.scanFields {
		_, folded, ok := e.value(fid)
		if !ok {
			continue
		}
		m := e.memoFor(s, fid)
		if !m.off {
			if lits, ok := m.lookup(folded); ok {
				for _, lit := range lits {
					e.litFound(s, lit, fid)
				}
				continue
			}
		}
		e.found = e.scan(s.ac, folded, e.found[:0])
		for _, lit := range e.found {
			e.litFound(s, lit, fid)
		}
		if !m.off {
			m.store(folded, e.found)
		}
	}
	e.cands = append(e.cands, s.always...)
	slices.Sort(e.cands)
	n := 0
	for _, ri := range e.cands {
		r := s.rules[ri]
		if r.prog.root.eval(e) {
			n++
			if emit != nil {
				emit(Hit{Rule: r, Techniques: r.Techniques, Tactics: r.Tactics, Event: ev, Time: ev.Time})
			}
		}
	}
	e.ev = nil
	return n
}

// scan appends to found the ids of the literals occurring in v, each once.
func (e *Engine) scan(a *aho, v string, found []int32) []int32 {
	st := uint32(0)
	nc := uint32(a.nclass)
	e.scanGen++
	if e.scanGen == 0 {
		clear(e.scanSeen)
		e.scanGen = 1
	}
	for i := 0; i < len(v); i++ {
		st = a.next[st*nc+uint32(a.class[v[i]])]
		if o := a.out[st]; o >= 0 {
			for _, lit := range a.outs[o] {
				if e.scanSeen[lit] != e.scanGen {
					e.scanSeen[lit] = e.scanGen
					found = append(found, lit)
				}
			}
		}
	}
	return found
}

// litFound makes the rules requiring literal lit in field fid candidates.
func (e *Engine) litFound(s *ruleSet, lit int32, fid int) {
	// litSeen holds gen and field so a literal is handled once per field
	// per event.
	mark := uint64(e.gen)<<32 | uint64(uint32(fid))
	if e.litSeen[lit] == mark {
		return
	}
	e.litSeen[lit] = mark
	fid32 := int32(fid)
	for _, lr := range s.litRules[lit] {
		if lr.fid == fid32 && e.ruleHit[lr.rule] != e.gen {
			e.ruleHit[lr.rule] = e.gen
			e.cands = append(e.cands, lr.rule)
		}
	}
}

func (e *Engine) begin(ev *telemetry.Event, s *ruleSet) {
	e.ev = ev
	e.gen++
	if e.gen == 0 { // wrapped: clear stamps
		clear(e.slots)
		clear(e.litSeen)
		clear(e.ruleHit)
		e.allGen = 0
		e.gen = 1
	}
	if n := fieldCount(); len(e.slots) < n {
		e.slots = append(e.slots, make([]slot, n-len(e.slots))...)
	}
	if n := len(s.litRules); len(e.litSeen) < n {
		e.litSeen = append(e.litSeen, make([]uint64, n-len(e.litSeen))...)
	}
	if n := len(s.litRules); len(e.scanSeen) < n {
		e.scanSeen = append(e.scanSeen, make([]uint32, n-len(e.scanSeen))...)
	}
	if n := len(s.rules); len(e.ruleHit) < n {
		e.ruleHit = append(e.ruleHit, make([]uint32, n-len(e.ruleHit))...)
	}
	e.arena = e.arena[:0]
	e.cands = e.cands[:0]
}

// value returns a field's raw and folded value, computed once per event.
func (e *Engine) value(fid int) (string, string, bool) {
	sl := &e.slots[fid]
	if sl.gen == e.gen {
		return sl.raw, sl.folded, sl.ok
	}
	sl.gen = e.gen
	var raw string
	raw, sl.ok, e.numBuf = lookupField(e.ev, fieldName(fid), e.numBuf[:0])
	sl.raw = raw
	if !sl.ok {
		sl.raw, sl.folded = "", ""
		return "", "", false
	}
	if !needsFold(raw) {
		sl.folded = raw
	} else {
		// Folded values live in the arena until the next event. If the
		// arena grows, earlier strings keep the old array alive.
		start := len(e.arena)
		e.arena = appendFold(e.arena, raw)
		sl.folded = unsafe.String(unsafe.SliceData(e.arena[start:]), len(e.arena)-start)
	}
	return sl.raw, sl.folded, true
}

// anyValue runs pred over every field value of the event (keywords). The
// values are gathered and folded once per event.
func (e *Engine) anyValue(pred func(raw, folded string) bool) bool {
	if e.allGen != e.gen {
		e.allGen = e.gen
		e.allVals = e.allVals[:0]
		eachValue(e.ev, func(v string) bool {
			f := v
			if needsFold(v) {
				start := len(e.arena)
				e.arena = appendFold(e.arena, v)
				f = unsafe.String(unsafe.SliceData(e.arena[start:]), len(e.arena)-start)
			}
			e.allVals = append(e.allVals, rawFolded{v, f})
			return false
		})
	}
	for _, v := range e.allVals {
		if pred(v.raw, v.folded) {
			return true
		}
	}
	return false
}
