package detections

import (
	mathbits "math/bits"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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
	// lastChan is the channel of the last event (a copy) and lastService
	// its channelService.
	lastChan, lastService string
	chanSeen              bool
	set                   *ruleSet // while evaluating: the set whose literals were scanned

	// per-event scratch
	ev      *telemetry.Event
	aliases map[string][]string // sourceAliases[ev.Source]
	gen     uint32
	slots   []slot
	arena   []byte
	numBuf  []byte
	litSeen []uint32 // by literal id: gen when found in the current event
	// cands: bit ri set when rule ri of the set is a candidate (see
	// Match); all zero between events
	cands []uint64
	// evaluated is how many rules the last Match evaluated
	evaluated int
	// every field value, raw and folded, for keyword searches; valid
	// when allGen == gen
	allGen  uint32
	allVals []rawFolded
	// literals found in one field, and the per-field memos of them
	found   []int32
	memoSet *ruleSet
	memos   []*fieldMemo // by field id, of memoSet
	// memosBySet keeps the memos of the other rule sets: mixed telemetry
	// (process, file, registry, network events interleaved) switches set
	// at almost every event, and memos rebuilt at each switch never
	// remember a value nor finish sampling grams (a 48 KB table per event)
	memosBySet map[*ruleSet][]*fieldMemo
	// scanSeen[lit] == scanGen: lit already found by the current scan
	scanSeen []uint32
	scanGen  uint32
	foldBuf  []byte   // one folded value, for keyword scans
	names    []string // field names by id (a snapshot of fieldTable)

	// gathered: the event's Fields were read in one pass by begin, so a
	// field not stamped in slots is not in Fields.
	gathered bool
	keyCache []keyCacheEnt
	keyCount int // fieldCount() when keyCache was filled
	keyUsed  int // entries of keyCache in use
}

type rawFolded struct{ raw, folded string }

// slot is one field of the current event. raw is valid when gen is the
// event's; folded when fgen is. When the engine gathered the event's
// Fields in one pass (gathered), a slot not stamped by it is not in Fields.
type slot struct {
	gen    uint32
	fgen   uint32
	ok     bool
	raw    string
	folded string
}

// keyCacheEmpty marks an unused entry of the field-name cache.
const keyCacheEmpty = -2

// keyCacheSize is the number of entries of the field-name cache (a power
// of two; the cache is emptied when three quarters full).
const keyCacheSize = 256

// keyCacheEnt maps an event's field name to a field id (-1: no rule reads
// it). Importers intern field names, so the same name arrives with the same
// bytes event after event; the entry keeps its string alive, so the address
// it is found by cannot be reused for another name.
type keyCacheEnt struct {
	key string
	fid int32
}

// compiled is the part of an Engine shared by its clones.
type compiled struct {
	rules []*Rule
	mu    sync.Mutex
	sets  map[logKey]*ruleSet
}

// ruleSet is the matcher for one log key: the rules that apply, the
// literals to look for in each field (one filter per field), and the rules
// that must always be evaluated.
//
// A literal id (a "pair") is one literal in one field: the literals the
// prefilter requires (litRules says which rules need them) and the text of
// every case-insensitive contains of a field leaf, which evaluation then
// answers from the scan instead of searching the value again.
type ruleSet struct {
	rules    []*Rule
	lits     []string       // by literal id
	litField []int32        // by literal id: the field it is looked for in
	filters  []*fieldFilter // by field id: that field's literals
	// litRules: literal id → the rules whose first requirement group (see
	// requiredGroups) holds it. second[ri] is the literal ids of rule ri's
	// second group, nil if none: a rule whose first group has a literal in
	// the event stays a candidate only if its second has one too.
	litRules [][]int32
	second   [][]int32
	kwFilter *gramFilter // keyword literals, looked for in every value
	always   []int32
	// alwaysBits: bit ri set for the rules of always
	alwaysBits []uint64
	scanFields []int
	// cidPair[cid-cidBase] is the literal id of contains matcher cid, -1
	// when the set does not look for it.
	cidPair []int32
	cidBase int32
	// prog is the rules' conditions laid out for evaluation.
	prog flatProgram
	// anchored[fid], once set, replaces filters[fid]: the same literals
	// anchored on the grams rarest in the field's values seen so far.
	anchored   []atomic.Pointer[fieldFilter]
	anchoredMu sync.Mutex
}

// anchorSamples is how many values of a field the engine samples before
// anchoring its literals on the grams they hold least: a few dozen command
// lines already show which grams are everywhere (\users\, .exe", --type=).
const anchorSamples = 128

// filter returns the literal filter of field fid.
func (s *ruleSet) filter(fid int) *fieldFilter {
	if f := s.anchored[fid].Load(); f != nil {
		return f
	}
	return s.filters[fid]
}

// sampleGrams counts the grams of a value of field fid scanned by the
// engine; after anchorSamples values it anchors the field's literals anew.
func (s *ruleSet) sampleGrams(fid int, m *fieldMemo, v string) {
	if m.sampled >= anchorSamples || s.anchored[fid].Load() != nil {
		m.grams = nil
		return
	}
	if m.grams == nil {
		m.grams = &gramCounts{}
	}
	m.sampled++
	m.grams.add(v, m.sampled)
	if m.sampled == anchorSamples {
		s.reanchor(fid, m.grams)
		m.grams = nil
	}
}

// reanchor replaces field fid's filter by one whose ASCII literals are
// anchored by the sampled gram counts (once: engines sharing the set use
// the first).
func (s *ruleSet) reanchor(fid int, grams *gramCounts) {
	s.anchoredMu.Lock()
	defer s.anchoredMu.Unlock()
	if s.anchored[fid].Load() != nil {
		return
	}
	old := s.filters[fid]
	f := &fieldFilter{ascii: newScanFilter(s.lits, old.ascii.ids, grams), uni: old.uni}
	s.anchored[fid].Store(f)
}

// costlyField reports whether adding literals to a field's scan is costly:
// its values are long and rarely repeat (command lines, hashes), or it is
// every value (keywords).
func costlyField(fid int) bool {
	return fid == kwField || costlyFields[fid]
}

var costlyFields = map[int]bool{fieldID("CommandLine"): true, fieldID("ParentCommandLine"): true, fieldID("Hashes"): true}

// minScanContains is the shortest contains literal answered from the scan:
// shorter ones occur in most values, so looking for them in every event
// costs more than testing the few candidate rules' values with
// strings.Contains (vectorised for short literals).
const minScanContains = 4

// NewEngine compiles rules into an engine. Rules must come from the Load
// functions (they carry their compiled programs); others are ignored.
func NewEngine(rules []*Rule) *Engine {
	var rs []*Rule
	for _, r := range rules {
		if r != nil && (r.prog != nil || r.lazy != nil) {
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
	c.sets[k.clone()] = s
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
	type pairKey struct {
		fid int
		lit string
	}
	// Rules need a dozen literals each, give or take: sized for that, the
	// map and the slices of literals are not grown (and copied) a dozen
	// times while they fill.
	n := 0
	for _, r := range rules {
		if applies(r.Logsource, k) {
			n++
		}
	}
	pairIdx := make(map[pairKey]int32, 12*n)
	s.lits = make([]string, 0, 12*n)
	s.litField = make([]int32, 0, 12*n)
	s.litRules = make([][]int32, 0, 12*n)
	byField := map[int][]int32{}
	pair := func(fid int, lit string) int32 {
		id, seen := pairIdx[pairKey{fid, lit}]
		if !seen {
			id = int32(len(s.lits))
			pairIdx[pairKey{fid, lit}] = id
			s.lits = append(s.lits, lit)
			s.litField = append(s.litField, int32(fid))
			s.litRules = append(s.litRules, nil)
			if len(byField[fid]) == 0 && fid != kwField {
				s.scanFields = append(s.scanFields, fid)
			}
			byField[fid] = append(byField[fid], id)
		}
		return id
	}
	type pendingGroup struct {
		ri   int32
		reqs []litReq
	}
	var later []pendingGroup
	type pendingContains struct {
		cid int32
		fid int
		lit string
	}
	contains := make([]pendingContains, 0, 8*n)
	for _, r := range rules {
		if !applies(r.Logsource, k) {
			continue
		}
		prog := r.program()
		if prog == nil {
			continue
		}
		ri := int32(len(s.rules))
		s.rules = append(s.rules, r)
		eachLeaf(prog.root, func(l *leaf) {
			for _, g := range l.groups {
				for i := range g {
					m := &g[i]
					if m.cid != 0 && len(m.s) >= minScanContains && len(m.s) <= maxGramLiteral {
						contains = append(contains, pendingContains{m.cid, l.fid, m.s})
					}
					for k, set := range m.reSets {
						if k >= len(m.reSetIDs) {
							break
						}
						for j, str := range set {
							if len(str) >= minScanContains && len(str) <= maxGramLiteral {
								contains = append(contains, pendingContains{m.reSetIDs[k][j], l.fid, str})
							}
						}
					}
				}
			}
		})
		groups := requiredGroups(prog.root)
		if len(groups) == 0 {
			s.always = append(s.always, ri)
			s.second = append(s.second, nil)
			continue
		}
		for _, q := range groups[0] {
			id := pair(q.fid, q.lit)
			if !slices.Contains(s.litRules[id], ri) {
				s.litRules[id] = append(s.litRules[id], ri)
			}
		}
		s.second = append(s.second, nil)
		if len(groups) > 1 {
			later = append(later, pendingGroup{ri, groups[1]})
		}
	}
	// Contains literals, answered from the scan: those the scan looks for
	// anyway, and those that are rare in typical text. A common one
	// (".exe", "\\users\\", "program files") occurs in most values, so
	// finding it in every event costs more than the few candidate rules
	// that test it pay with strings.Contains.
	// cidPair maps the cids of the set's contains matchers, from the
	// lowest to the highest (containsIDs numbers them in the order rules
	// compile, so those of one set are mostly one range), to their
	// literals: -1 until one is answered from the scan.
	if len(contains) > 0 {
		lo, hi := contains[0].cid, contains[0].cid
		for _, pc := range contains {
			lo, hi = min(lo, pc.cid), max(hi, pc.cid)
		}
		s.cidBase = lo
		s.cidPair = make([]int32, hi-lo+1)
		for i := range s.cidPair {
			s.cidPair[i] = -1
		}
	}
	for _, pc := range contains {
		if _, scanned := pairIdx[pairKey{pc.fid, pc.lit}]; !scanned && commonLiteral(pc.lit) {
			continue
		}
		s.cidPair[pc.cid-s.cidBase] = pair(pc.fid, pc.lit)
	}
	// Second groups, once every rule's first group and contains literals
	// are in: a literal of a long, mostly unique field (command lines,
	// hashes, keywords) is used only if the scan looks for it anyway;
	// adding literals there would slow every event's scan more than
	// fewer candidates save.
	for _, pg := range later {
		var second []int32
		for _, q := range pg.reqs {
			if _, scanned := pairIdx[pairKey{q.fid, q.lit}]; !scanned && costlyField(q.fid) {
				second = nil
				break
			}
			if id := pair(q.fid, q.lit); !slices.Contains(second, id) {
				second = append(second, id)
			}
		}
		s.second[pg.ri] = second
	}
	slices.Sort(s.scanFields)
	if n := len(s.scanFields); n > 0 {
		s.filters = make([]*fieldFilter, s.scanFields[n-1]+1)
		s.anchored = make([]atomic.Pointer[fieldFilter], len(s.filters))
	}
	for fid, ids := range byField {
		if fid == kwField {
			s.kwFilter = newGramFilter(s.lits, ids)
			continue
		}
		s.filters[fid] = newFieldFilter(s.lits, ids)
	}
	s.alwaysBits = make([]uint64, (len(s.rules)+63)/64)
	for _, ri := range s.always {
		s.alwaysBits[ri>>6] |= 1 << (ri & 63)
	}
	s.prog = flatten(s.rules, func(cid int32) int32 {
		if i := cid - s.cidBase; i >= 0 && int(i) < len(s.cidPair) {
			return s.cidPair[i]
		}
		return -1
	})
	return s
}

// eachLeaf calls fn for every leaf of n.
func eachLeaf(n *cnode, fn func(*leaf)) {
	if n.kind == cLeaf {
		fn(n.leaf)
		return
	}
	for _, k := range n.kids {
		eachLeaf(k, fn)
	}
}

// Match evaluates ev against every rule whose log source applies to it and
// calls emit for each hit, in rule order. It returns the number of hits.
// Match allocates nothing on its hot path once warmed up.
func (e *Engine) Match(ev *telemetry.Event, emit func(Hit)) int {
	// The channel's service, as for the last event when the channel is
	// the same (a lower-cased copy and a map lookup otherwise).
	if !e.chanSeen || ev.Channel != e.lastChan {
		e.lastChan, e.lastService, e.chanSeen = strings.Clone(ev.Channel), channelService(ev.Channel), true
	}
	k := keyWithService(ev, e.lastService)
	s := e.lastSet
	if s == nil || k != e.lastKey {
		s = e.c.set(k)
		// Copies: an event's strings may be reused for the next one
		// (importers.NextInto).
		e.lastKey, e.lastSet = k.clone(), s
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
					e.litFound(s, lit)
				}
				continue
			}
		}
		e.found = e.scan(s.filter(fid), folded, e.found[:0])
		if m.sampled < anchorSamples {
			s.sampleGrams(fid, m, folded)
		}
		for _, lit := range e.found {
			e.litFound(s, lit)
		}
		if !m.off {
			m.store(folded, e.found)
		}
	}
	if s.kwFilter != nil && !e.gathered {
		e.scanKeywords(s)
	}
	// Candidates, in rule order: the rules whose first requirement group
	// had a literal in the event (unless their second group has none)
	// and the rules evaluated always. The words are cleared on the way.
	n, evaluated := 0, 0
	e.set = s
	cands := e.cands[:len(s.alwaysBits)]
	for w, bits := range cands {
		cands[w] = 0
		bits |= s.alwaysBits[w]
		for ; bits != 0; bits &= bits - 1 {
			ri := int32(w<<6 | mathbits.TrailingZeros64(bits))
			if sec := s.second[ri]; sec != nil && !e.anySeen(sec) {
				continue
			}
			r := s.rules[ri]
			evaluated++
			if e.evalFlat(&s.prog, s.prog.roots[ri]) {
				n++
				if emit != nil {
					techs, tacs := r.Techniques, r.Tactics
					if r.narrow != nil {
						techs, tacs = r.hitAttack(e)
					}
					emit(Hit{Rule: r, Techniques: techs, Tactics: tacs, Event: ev, Time: ev.Time})
				}
			}
		}
	}
	e.ev, e.set, e.aliases, e.gathered = nil, nil, nil, false
	e.evaluated = evaluated
	return n
}

// scan appends to found the ids of the literals of f occurring in v, each
// once.
func (e *Engine) scan(f literalFinder, v string, found []int32) []int32 {
	e.scanGen++
	if e.scanGen == 0 {
		clear(e.scanSeen)
		e.scanGen = 1
	}
	return f.find(v, e.scanSeen, e.scanGen, found)
}

// literalFinder finds which of its literals occur in a value: each id is
// appended to found once, marked seen[id] = gen.
type literalFinder interface {
	find(v string, seen []uint32, gen uint32, found []int32) []int32
}

// fieldFilter finds the literals of one field: those of ASCII bytes in
// every value, the others (Cyrillic homoglyphs, emoji, Unicode dashes…)
// only in values with bytes beyond ASCII, where alone they can occur. The
// many non-ASCII literals of a few rules then cost nothing on the common
// ASCII command line.
type fieldFilter struct {
	ascii, uni *gramFilter // uni: nil when the field has no such literal
}

func newFieldFilter(lits []string, ids []int32) *fieldFilter {
	var ascii, uni []int32
	for _, id := range ids {
		if isASCII(lits[id]) {
			ascii = append(ascii, id)
		} else {
			uni = append(uni, id)
		}
	}
	f := &fieldFilter{ascii: newScanFilter(lits, ascii, nil)}
	if len(uni) > 0 {
		f.uni = newScanFilter(lits, uni, nil)
	}
	return f
}

func (f *fieldFilter) find(v string, seen []uint32, gen uint32, found []int32) []int32 {
	found = f.ascii.find(v, seen, gen, found)
	if f.uni != nil && !isASCII(v) {
		found = f.uni.find(v, seen, gen, found)
	}
	return found
}

// scanKeywords looks for the keyword literals in every value of the event.
// A value is folded and scanned only when its raw bytes may hold one (see
// gramFilter.mayHold).
func (e *Engine) scanKeywords(s *ruleSet) {
	eachValue(e.ev, func(v string) bool {
		e.scanKeyword(s, v)
		return false
	})
}

// scanKeyword looks for the keyword literals in one value.
func (e *Engine) scanKeyword(s *ruleSet, v string) {
	f := s.kwFilter
	if !f.mayHold(v) {
		return
	}
	fv := v
	if needsFold(v) {
		e.foldBuf = appendFold(e.foldBuf[:0], v)
		fv = unsafe.String(unsafe.SliceData(e.foldBuf), len(e.foldBuf))
	}
	e.found = e.scan(f, fv, e.found[:0])
	for _, lit := range e.found {
		e.litFound(s, lit)
	}
}

// litFound records that literal lit occurs in its field and makes the rules
// requiring it candidates.
func (e *Engine) litFound(s *ruleSet, lit int32) {
	if e.litSeen[lit] == e.gen {
		return
	}
	e.litSeen[lit] = e.gen
	for _, ri := range s.litRules[lit] {
		e.cands[ri>>6] |= 1 << (ri & 63)
	}
}

// anySeen reports whether one of the literals ids occurs in the current
// event.
func (e *Engine) anySeen(ids []int32) bool {
	for _, id := range ids {
		if e.litSeen[id] == e.gen {
			return true
		}
	}
	return false
}

// contains answers contains matcher cid from the literals found in its
// field by the scan of the current event.
func (e *Engine) contains(cid int32) (found, known bool) {
	s := e.set
	if s == nil {
		return false, false
	}
	i := cid - s.cidBase
	if i < 0 || int(i) >= len(s.cidPair) || s.cidPair[i] < 0 {
		return false, false
	}
	return e.litSeen[s.cidPair[i]] == e.gen, true
}

func (e *Engine) begin(ev *telemetry.Event, s *ruleSet) {
	e.ev = ev
	e.aliases = sourceAliases[ev.Source]
	e.gen++
	if e.gen == 0 { // wrapped: clear stamps
		clear(e.slots)
		clear(e.litSeen)
		e.allGen = 0
		e.gen = 1
	}
	if n := fieldCount(); len(e.slots) < n {
		e.slots = append(e.slots, make([]slot, n-len(e.slots))...)
	}
	if n := len(s.litRules); len(e.litSeen) < n {
		e.litSeen = append(e.litSeen, make([]uint32, n-len(e.litSeen))...)
	}
	if n := len(s.litRules); len(e.scanSeen) < n {
		e.scanSeen = append(e.scanSeen, make([]uint32, n-len(e.scanSeen))...)
	}
	if n := len(s.alwaysBits); len(e.cands) < n {
		e.cands = append(e.cands, make([]uint64, n-len(e.cands))...)
	}
	e.arena = e.arena[:0]
	if e.aliases == nil {
		e.gather(s)
	}
}

// gather reads the event's Fields in one pass: each field a rule reads goes
// to its slot (one cache lookup of its name instead of one map lookup per
// field the rules read), and every value is checked for the keyword
// literals on the way (see scanKeywords). Used when the event's source has
// no field aliases, so a field's slot is its own name's value.
func (e *Engine) gather(s *ruleSet) {
	if n := fieldCount(); e.keyCache == nil || e.keyCount != n || e.keyUsed > keyCacheSize*3/4 {
		if e.keyCache == nil {
			e.keyCache = make([]keyCacheEnt, keyCacheSize)
		}
		for i := range e.keyCache {
			e.keyCache[i] = keyCacheEnt{fid: keyCacheEmpty}
		}
		e.keyCount, e.keyUsed = n, 0
	}
	cache := e.keyCache[:keyCacheSize]
	kw := s.kwFilter
	for _, x := range e.ev.Fields.List() {
		k, v := x.Name, x.Value
		// Open addressing on the name's address: an interned name is
		// found at its first probe.
		h := uint64(uintptr(unsafe.Pointer(unsafe.StringData(k)))+uintptr(len(k))) * 0x9E3779B97F4A7C15 >> 56
		ent := &cache[h%keyCacheSize]
		for ent.fid != keyCacheEmpty && !sameString(ent.key, k) {
			h++
			ent = &cache[h%keyCacheSize]
		}
		if ent.fid == keyCacheEmpty {
			ent.key, ent.fid = k, int32(lookupFieldID(k))
			e.keyUsed++
		}
		if fid := ent.fid; fid >= 0 && int(fid) < len(e.slots) {
			sl := &e.slots[fid]
			sl.gen, sl.ok, sl.raw = e.gen, true, v
		}
	}
	if kw != nil {
		// With the buffer every value lies in (handed over by the
		// importer that decoded them), the keyword literals are first
		// looked for in it at once: a literal absent from it is in no
		// value. Otherwise, or when it may hold one, each value is
		// checked on its own.
		if arena := e.ev.Fields.ValueArena(); arena == "" || kw.mayHold(arena) {
			for _, x := range e.ev.Fields.List() {
				e.scanKeyword(s, x.Value)
			}
		}
	}
	if kw != nil {
		for i, name := range typedFieldNames {
			if e.slots[typedFieldIDs[i]].gen == e.gen {
				continue // in Fields: done above
			}
			if v, ok, _ := typedField(e.ev, name, nil); ok {
				e.scanKeyword(s, v)
			}
		}
	}
	e.gathered = true
}

// sameString reports whether a and b are equal, without comparing their
// bytes when they are the same bytes (an interned field name, found again).
func sameString(a, b string) bool {
	return len(a) == len(b) && (unsafe.StringData(a) == unsafe.StringData(b) || a == b)
}

// value returns a field's raw and folded value, computed once per event.
func (e *Engine) value(fid int) (string, string, bool) {
	sl := &e.slots[fid]
	if sl.fgen == e.gen {
		return sl.raw, sl.folded, sl.ok
	}
	sl.fgen = e.gen
	if sl.gen != e.gen {
		sl.gen = e.gen
		if fid >= len(e.names) {
			e.names = fieldNames()
		}
		if e.gathered { // not in Fields
			sl.raw, sl.ok, e.numBuf = typedField(e.ev, e.names[fid], e.numBuf[:0])
		} else {
			sl.raw, sl.ok, e.numBuf = lookupFieldIn(e.ev, e.aliases, e.names[fid], e.numBuf[:0])
		}
	}
	raw := sl.raw
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

// commonLiteral reports whether a folded literal occurs in typical
// process-creation text (commonGramText).
func commonLiteral(lit string) bool {
	// A literal with a gram the text lacks is not in it: most are ruled
	// out so, without searching the text's 4 KB.
	if len(lit) >= 4 {
		common := commonGrams()
		for i := 0; i+4 <= len(lit); i += 4 {
			if common.count(gramAt(lit, i)) == 0 {
				return false
			}
		}
	}
	return strings.Contains(commonGramText, lit)
}
