package detections

import (
	_ "embed"
	"encoding/binary"
	"slices"
	"strings"
	"sync"
	"unsafe"
)

// gramFilter finds which of a set of literals occur in a (case-folded)
// string, exactly: a literal is reported iff it is a substring of the value.
// It replaces a dense Aho-Corasick DFA whose tens of megabytes of
// transitions missed the cache on nearly every input byte.
//
// Every literal of four bytes or more is represented by one of its 4-byte
// fragments (gram), chosen to be rare: first by typical text
// (commonGramText), then by the grams of the field's first values scanned
// (see ruleSet.reanchor). A scan hashes every 4-byte window of
// the value, tests the hash in a small bitmap (a few KiB, stays in L1), and
// only on a hit looks the window up in a hash table of grams and compares
// the literals anchored on it with the value at their position. Literals of
// two and three bytes are their own grams, in tables of their own; literals
// of one byte are a 256-entry table.
//
// A literal occurs at position p iff its gram occurs at p+off, so every
// occurrence is found and every report is verified byte for byte.
type gramFilter struct {
	lits []string // by literal id (shared by the filters of a rule set)
	ids  []int32  // the filter's literals
	data []byte   // the bytes of the filter's literals, one after another

	g4, g3, g2 gramIndex  // grams of 4, 3 and 2 bytes
	one        [256]int32 // 1-byte literal id + 1, 0 none
	hasOne     bool
	oneBytes   []byte // the bytes of one

	// short: literals of two and three bytes, when there are at most
	// maxIndexShortLits of them, each looked for with one strings.Index
	// (vectorised) instead of in the tables g3 and g2, which would cost
	// two more tests at every window of every value.
	short []int32
	// shortPairs is an exact bitmap of the short literals' first two
	// bytes and shortByPair the literals by them, for the vectorised scan
	// (which tests every window's first two bytes in the bitmap instead of
	// one strings.Index a literal).
	shortPairs  []uint64
	shortByPair map[uint16][]int32

	// pre is an exact bitmap of the first two bytes of every gram of g4,
	// g3 and g2: a window whose first two bytes are not in it needs no
	// further test.
	pre []uint64

	// loose is a bitmap of the literals' 4-byte grams with bit 5 of every
	// byte set (see mayHold).
	loose       []uint64
	looseShift  uint32
	loosePre    []uint64 // exact bitmap of the loose grams' first two bytes
	looseStride int      // mayHold tests one window in looseStride
	// scanOnly: the filter was built without mayHold's bitmaps (loose,
	// loosePre, few); its mayHold answers true.
	scanOnly bool

	// few: when the filter has at most maxFewLiterals literals, each with
	// a byte that is not a letter, mayHold looks for that byte of each
	// literal with strings.IndexByte and compares the literal around it.
	few []fewLiteral
	// fewPairs: every literal of few has two bytes that are not letters
	fewPairs bool

	// long: when every literal has minLongLiteral bytes or more (hashes:
	// imphash=…, md5=…), the set of the 8-byte grams of their last
	// minLongLiteral bytes, tested at every longStride-th window of a
	// value before the scan: a value with no such window holds none of
	// the literals. (The last bytes of a hash literal are hex digits,
	// whose grams are nearly all distinct; "imphash=" is in every value.)
	long      []uint64 // open addressing; 0 is an empty slot
	longShift uint32
	longZero  bool     // a gram of eight zero bytes is in the set
	longBits  []uint64 // bitmap of the grams' hashes in front of long
}

// longBitsLog is log2 of the bits of gramFilter.longBits (8 KiB, in L1).
const longBitsLog = 16

// minLongLiteral is the shortest literal length at which a filter tests a
// value's 8-byte windows at a stride (longStride) before scanning it.
const minLongLiteral = 16

// longStride: a literal's last minLongLiteral bytes cover this many
// windows of eight bytes.
const longStride = minLongLiteral - 7

const longMul = 0x9E3779B97F4A7C15

// fewLiteral is a literal of a small filter and its rarest caseless byte.
type fewLiteral struct {
	lit  string
	at   int // offset of the byte in lit
	byte byte
	// at2: offset of another byte of lit that is not a letter (after
	// at or before it), -1 when it has none
	at2 int
}

// maxFewLiterals is the most literals mayHold searches for one by one.
const maxFewLiterals = 4

// gramIndex is a hash table of grams, each with the literals anchored on
// it, behind a bitmap of gram hashes.
type gramIndex struct {
	bits []uint64 // bitmap over the top bits of the gram hash
	// bits2 is a second bitmap over another hash of the grams (gramMul2):
	// the vectorised loop tests both, so that few windows reach the table.
	bits2  []uint64
	bshift uint32 // 32 - log2(bitmap size)
	tab    []gramSlot
	tshift uint32 // 32 - log2(len(tab))
	ents   []gramEnt
}

// gramSlot is one gram of the hash table: its entries are ents[start:
// start+n]; the first is also held in the slot, so that the common gram of
// one literal costs no further memory access than the literal's bytes.
type gramSlot struct {
	gram  uint32
	n     uint32 // 0: empty slot
	start uint32
	first gramEnt
}

// gramEnt is a literal anchored on a gram: the literal starts off bytes
// before the gram; its bytes are data[at:at+n] of the filter.
type gramEnt struct {
	lit int32
	at  uint32
	off uint8
	n   uint8 // literal length
}

// maxIndexByteLits is the most 1-byte literals find looks for with one
// strings.IndexByte each rather than one table lookup per byte of the value.
const maxIndexByteLits = 32

// maxIndexShortLits is the most 2- and 3-byte literals find looks for with
// one strings.Index each rather than in gram tables.
const maxIndexShortLits = 16

// maxGramLiteral is the longest literal a gramFilter takes.
const maxGramLiteral = 255

const gramMul = 0x9E3779B1

// gramMul2 is the multiplier of gramIndex.bits2 (the constant in
// gramscan_amd64.s).
const gramMul2 = 0x85EBCA77

func gramAt(v string, i int) uint32 {
	return uint32(v[i]) | uint32(v[i+1])<<8 | uint32(v[i+2])<<16 | uint32(v[i+3])<<24
}

// commonGramText is typical Windows process-creation text: grams that occur
// in it are poor anchors. It is written by internal/gengrams from the lab
// recordings of ../shared/datasets (Sysmon 1 and Security 4688 values), not
// from the benchmark corpus that measures the engine.
//
//go:generate go run ./internal/gengrams -datasets ../../shared/datasets -out commongrams.txt
//go:embed commongrams.txt
var commonGramText string

// commonGrams counts the grams of commonGramText (built once: every
// filter, and every re-anchoring, reads it).
var commonGrams = sync.OnceValue(func() *gramTable {
	common := newGramTable(len(commonGramText))
	for i := 0; i+4 <= len(commonGramText); i++ {
		common.add(gramAt(commonGramText, i))
	}
	return common
})

// gramTable counts grams: an open-addressing hash table of (gram, count)
// pairs, a few times cheaper than a map to fill and probe.
type gramTable struct {
	slots []uint64 // count<<32 | gram; count 0: empty
	shift uint32
}

// newGramTable returns a table for up to n distinct grams.
func newGramTable(n int) *gramTable {
	bits := uint32(4)
	for 1<<bits < 2*n {
		bits++
	}
	return &gramTable{slots: make([]uint64, 1<<bits), shift: 32 - bits}
}

// gramTableScratch holds emptied tables by size (log2 of their slots), so
// that building one filter after another (every field of a rule set, and
// again when re-anchored) does not take fresh memory for each count of
// shared grams: the tables of a command line's literals are megabytes.
var gramTableScratch [33]sync.Pool

// scratchGramTable returns an empty table for up to n distinct grams, to
// be given back with releaseGramTable.
func scratchGramTable(n int) *gramTable {
	bits := uint32(4)
	for 1<<bits < 2*n {
		bits++
	}
	if t, ok := gramTableScratch[bits].Get().(*gramTable); ok {
		return t
	}
	return &gramTable{slots: make([]uint64, 1<<bits), shift: 32 - bits}
}

// releaseGramTable empties t and keeps it for scratchGramTable.
func releaseGramTable(t *gramTable) {
	clear(t.slots)
	gramTableScratch[32-t.shift].Put(t)
}

// add counts one more occurrence of g.
func (t *gramTable) add(g uint32) {
	mask := uint32(len(t.slots) - 1)
	for i := (g * gramMul) >> t.shift; ; i = (i + 1) & mask {
		s := t.slots[i]
		if s>>32 == 0 {
			t.slots[i] = 1<<32 | uint64(g)
			return
		}
		if uint32(s) == g {
			t.slots[i] = s + 1<<32
			return
		}
	}
}

// count returns how many times g was added.
func (t *gramTable) count(g uint32) int {
	mask := uint32(len(t.slots) - 1)
	for i := (g * gramMul) >> t.shift; ; i = (i + 1) & mask {
		s := t.slots[i]
		if s>>32 == 0 {
			return 0
		}
		if uint32(s) == g {
			return int(s >> 32)
		}
	}
}

// newGramFilter builds a filter for the literals of lits whose ids are in
// ids (a literal id indexes lits; literals are not empty).
func newGramFilter(lits []string, ids []int32) *gramFilter {
	return newAnchoredGramFilter(lits, ids, nil)
}

// newAnchoredGramFilter is newGramFilter with each literal anchored on the
// gram seen in the fewest sampled values (freq: gram → values holding it;
// nil: none sampled), so that fewer windows of the values scanned reach
// the gram table.
func newAnchoredGramFilter(lits []string, ids []int32, freq *gramCounts) *gramFilter {
	return buildGramFilter(lits, ids, freq, true)
}

// newScanFilter is newAnchoredGramFilter for a filter that only finds
// (a field's literals): without mayHold's bitmaps, whose building and
// memory a field's filter (built for every field the rules read, and again
// when re-anchored) would spend for nothing. Its mayHold answers true.
func newScanFilter(lits []string, ids []int32, freq *gramCounts) *gramFilter {
	return buildGramFilter(lits, ids, freq, false)
}

func buildGramFilter(lits []string, ids []int32, freq *gramCounts, hold bool) *gramFilter {
	f := &gramFilter{lits: lits, ids: ids, scanOnly: !hold}
	common := commonGrams()
	// How many literals contain each gram: sharing an anchor means
	// verifying more literals on a hit.
	ngrams := 0
	for _, id := range ids {
		ngrams += max(len(lits[id])-3, 0)
	}
	shared := scratchGramTable(ngrams)
	defer releaseGramTable(shared)
	for _, id := range ids {
		l := lits[id]
		for i := 0; i+4 <= len(l); i++ {
			shared.add(gramAt(l, i))
		}
	}
	var b4, b3, b2 gramBuilder
	b4.ents = make([]gramBuilt, 0, len(ids))
	nshort := 0
	for _, id := range ids {
		if n := len(lits[id]); n == 2 || n == 3 {
			nshort++
		}
	}
	indexShort := nshort <= maxIndexShortLits
	for _, id := range ids {
		l := lits[id]
		if indexShort && (len(l) == 2 || len(l) == 3) {
			f.short = append(f.short, id)
			continue
		}
		at := uint32(len(f.data))
		f.data = append(f.data, l...)
		switch len(l) {
		case 1:
			if f.one[l[0]] == 0 {
				f.oneBytes = append(f.oneBytes, l[0])
			}
			f.one[l[0]] = id + 1
			f.hasOne = true
			continue
		case 2:
			b2.add(uint32(l[0])|uint32(l[1])<<8, gramEnt{lit: id, at: at, n: 2})
			continue
		case 3:
			b3.add(uint32(l[0])|uint32(l[1])<<8|uint32(l[2])<<16, gramEnt{lit: id, at: at, n: 3})
			continue
		}
		best, bestScore := 0, -1
		for i := 0; i+4 <= len(l) && i <= 255; i++ {
			g := gramAt(l, i)
			score := common.count(g)*1000 + shared.count(g)
			if freq != nil {
				score += int(freq.values(g)) << 32
			}
			if bestScore < 0 || score < bestScore {
				best, bestScore = i, score
			}
		}
		b4.add(gramAt(l, best), gramEnt{lit: id, at: at, off: uint8(best), n: uint8(len(l))})
	}
	f.g4, f.g3, f.g2 = b4.build(), b3.build(), b2.build()
	if len(f.short) > 0 {
		f.shortPairs = make([]uint64, 65536/64)
		f.shortByPair = map[uint16][]int32{}
		for _, id := range f.short {
			l := f.lits[id]
			k := uint16(l[0]) | uint16(l[1])<<8
			f.shortPairs[k/64] |= 1 << (k % 64)
			f.shortByPair[k] = append(f.shortByPair[k], id)
		}
	}
	f.pre = make([]uint64, 65536/64)
	for _, b := range []*gramBuilder{&b4, &b3, &b2} {
		for _, g := range b.order {
			k := g & 0xFFFF
			f.pre[k/64] |= 1 << (k % 64)
		}
	}
	shortest := maxGramLiteral + 1
	for _, id := range ids {
		shortest = min(shortest, len(lits[id]))
	}
	if len(ids) > 0 && shortest >= minLongLiteral {
		f.buildLong()
	}
	if !hold {
		return f
	}
	// mayHold's bitmaps hold every 4-byte gram of every literal of four
	// bytes or more, so that it need test only one window in looseStride.
	grams := make([]uint32, 0, ngrams)
	minLen := 0
	for _, id := range ids {
		l := lits[id]
		if len(l) < 4 {
			continue
		}
		if minLen == 0 || len(l) < minLen {
			minLen = len(l)
		}
		for i := 0; i+4 <= len(l); i++ {
			grams = append(grams, gramAt(l, i)|looseBits)
		}
	}
	f.looseStride = max(minLen-3, 1)
	f.few = fewLiterals(lits, ids)
	f.fewPairs = len(f.few) > 0 && !slices.ContainsFunc(f.few, func(fl fewLiteral) bool { return fl.at2 < 0 })
	lbits := uint32(12)
	for 1<<lbits < 16*len(grams) {
		lbits++
	}
	f.loose = make([]uint64, (1<<lbits)/64)
	f.looseShift = 32 - lbits
	f.loosePre = make([]uint64, 65536/64)
	for _, g := range grams {
		h := (g * gramMul) >> f.looseShift
		f.loose[h/64] |= 1 << (h % 64)
		k := g & 0xFFFF
		f.loosePre[k/64] |= 1 << (k % 64)
	}
	return f
}

const looseBits = 0x20202020

// mayHold reports whether the case-folded v may contain a literal of f,
// from v's raw bytes without folding it: false means none occurs. Setting
// bit 5 of every byte maps an ASCII letter and its folded form alike, so
// every 4-byte window of an occurrence in a pure ASCII v has the loose form
// of one of the literal's grams. An occurrence of a literal of n bytes
// spans n-3 consecutive window starts, so testing the windows starting at
// multiples of looseStride (the shortest literal's length - 3) finds one.
// Values with other bytes, and filters with literals under four bytes,
// answer true.
func (f *gramFilter) mayHold(v string) bool {
	if f.scanOnly {
		return true
	}
	if f.few != nil {
		return f.mayHoldFew(v)
	}
	if f.hasOne || len(f.g3.ents) > 0 || len(f.g2.ents) > 0 || len(f.short) > 0 {
		return true
	}
	if len(f.g4.ents) == 0 {
		return false
	}
	loose, shift, pre, stride := f.loose, f.looseShift, f.loosePre[:65536/64], f.looseStride
	for i := 0; i+4 <= len(v); i += stride {
		w := gramAt(v, i) | looseBits
		if k := w & 0xFFFF; pre[k/64]&(1<<(k%64)) == 0 {
			continue
		}
		h := (w * gramMul) >> shift
		if loose[h/64]&(1<<(h%64)) != 0 {
			return true
		}
	}
	return !isASCII(v)
}

// fewLiterals returns the literals of ids with the rarest byte of each that
// is not an ASCII letter (by its count in the common text), or nil when
// there are more than maxFewLiterals or one is all letters or not ASCII.
func fewLiterals(lits []string, ids []int32) []fewLiteral {
	if len(ids) == 0 || len(ids) > maxFewLiterals {
		return nil
	}
	var byteCount [256]int
	for i := 0; i < len(commonGramText); i++ {
		byteCount[commonGramText[i]]++
	}
	var out []fewLiteral
	for _, id := range ids {
		l := lits[id]
		best := -1
		for i := 0; i < len(l); i++ {
			c := l[i]
			if c >= 0x80 {
				return nil
			}
			if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' {
				continue
			}
			if best < 0 || byteCount[c] < byteCount[l[best]] {
				best = i
			}
		}
		if best < 0 {
			return nil
		}
		second := -1
		for i := 0; i < len(l); i++ {
			c := l[i]
			if i == best || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' {
				continue
			}
			if second < 0 || byteCount[c] < byteCount[l[second]] {
				second = i
			}
		}
		out = append(out, fewLiteral{lit: l, at: best, byte: l[best], at2: second})
	}
	return out
}

// mayHoldFew is mayHold for a filter of a few literals (ASCII, each with a
// byte that is not a letter): it looks for each literal's chosen byte with
// strings.IndexByte and compares the literal around each occurrence. A
// value without that byte cannot hold the literal: folding never makes a
// non-letter byte. Around an occurrence, bytes beyond ASCII answer true
// (a rune such as the Kelvin sign folds to an ASCII letter of another
// length); else the comparison is exact. Values beyond ASCII elsewhere
// (Microsoft® in Product) do not matter.
func (f *gramFilter) mayHoldFew(v string) bool {
	if f.fewPairs && !strings.Contains(v, "\u0130") && !strings.Contains(v, "\u212a") {
		// No rune folds to ASCII (İ → i and the Kelvin sign → k are the
		// only ones): an occurrence is the literal's bytes up to case,
		// its two non-letter bytes at their offsets. Test those pairs,
		// 32 positions at a time.
		for i := range f.few {
			fl := &f.few[i]
			o1, o2 := min(fl.at, fl.at2), max(fl.at, fl.at2)
			for p := 0; ; p++ {
				if p = nextPair(v, p, len(fl.lit), o1, o2, fl.lit[o1], fl.lit[o2]); p < 0 {
					break
				}
				if equalFoldASCII(v[p:p+len(fl.lit)], fl.lit) {
					return true
				}
			}
		}
		return false
	}
	for i := range f.few {
		fl := &f.few[i]
		for from := 0; ; {
			j := strings.IndexByte(v[from:], fl.byte)
			if j < 0 {
				break
			}
			p := from + j - fl.at
			if lo, hi := max(p, 0), min(p+len(fl.lit), len(v)); !isASCII(v[lo:hi]) {
				return true
			}
			if p >= 0 && p+len(fl.lit) <= len(v) && equalFoldASCII(v[p:p+len(fl.lit)], fl.lit) {
				return true
			}
			from += j + 1
		}
	}
	return false
}

// equalFoldASCII reports whether ASCII s folded equals the folded lit.
func equalFoldASCII(s, lit string) bool {
	for i := 0; i < len(lit); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lit[i] {
			return false
		}
	}
	return true
}

// isASCII reports whether every byte of s is below 0x80.
func isASCII(s string) bool {
	b := unsafe.Slice(unsafe.StringData(s), len(s))
	var acc uint64
	i := 0
	for ; i+16 <= len(b); i += 16 {
		acc |= binary.LittleEndian.Uint64(b[i:]) | binary.LittleEndian.Uint64(b[i+8:])
	}
	for ; i < len(b); i++ {
		acc |= uint64(b[i])
	}
	return acc&0x8080808080808080 == 0
}

// gramBuilder gathers the entries of a gramIndex by gram.
type gramBuilder struct {
	ents  []gramBuilt // in the order added
	order []uint32    // the distinct grams, ascending (after group)
}

type gramBuilt struct {
	g uint32
	e gramEnt
}

func (b *gramBuilder) add(g uint32, e gramEnt) {
	b.ents = append(b.ents, gramBuilt{g, e})
}

// group sorts the entries by gram (a gram's entries stay in the order
// added) and lists the distinct grams in order.
func (b *gramBuilder) group() {
	// Sorted as integers, gram and position added in one word: a stable
	// sort by a comparison function (insertion sort and symmerge, a call
	// per comparison) took most of building a filter.
	keys := make([]uint64, len(b.ents))
	for i, x := range b.ents {
		keys[i] = uint64(x.g)<<32 | uint64(i)
	}
	slices.Sort(keys)
	sorted := make([]gramBuilt, len(b.ents))
	for i, k := range keys {
		sorted[i] = b.ents[uint32(k)]
	}
	b.ents = sorted
	b.order = b.order[:0]
	for i, x := range b.ents {
		if i == 0 || x.g != b.ents[i-1].g {
			b.order = append(b.order, x.g)
		}
	}
}

func (b *gramBuilder) build() gramIndex {
	var x gramIndex
	b.group()
	if len(b.order) == 0 {
		return x
	}
	tbits := uint32(4)
	for 1<<tbits < 2*len(b.order) {
		tbits++
	}
	bbits := max(tbits+3, 12) // ≥ 4 bitmap bits per gram slot
	x.tab = make([]gramSlot, 1<<tbits)
	x.tshift = 32 - tbits
	x.bits = make([]uint64, (1<<bbits)/64)
	x.bits2 = make([]uint64, (1<<bbits)/64)
	x.bshift = 32 - bbits
	x.ents = make([]gramEnt, 0, len(b.ents))
	mask := uint32(len(x.tab) - 1)
	for i := 0; i < len(b.ents); {
		g := b.ents[i].g
		k := i + 1
		for k < len(b.ents) && b.ents[k].g == g {
			k++
		}
		h := g * gramMul
		x.bits[(h>>x.bshift)/64] |= 1 << ((h >> x.bshift) % 64)
		h2 := (g * gramMul2) >> x.bshift
		x.bits2[h2/64] |= 1 << (h2 % 64)
		j := h >> x.tshift
		for x.tab[j].n != 0 {
			j = (j + 1) & mask
		}
		x.tab[j] = gramSlot{gram: g, start: uint32(len(x.ents)), n: uint32(k - i), first: b.ents[i].e}
		for _, be := range b.ents[i:k] {
			x.ents = append(x.ents, be.e)
		}
		i = k
	}
	return x
}

// has tests the bitmap: false means no gram of the index hashes to h.
func (x *gramIndex) has(h uint32) bool {
	b := h >> x.bshift
	return x.bits[b/64]&(1<<(b%64)) != 0
}

// find appends to found the ids of the literals occurring in v, each once:
// seen[lit] == gen marks a literal already found (the caller bumps gen for
// every scan).
func (f *gramFilter) find(v string, seen []uint32, gen uint32, found []int32) []int32 {
	if f.long != nil && !f.mayHoldLong(v) {
		return found
	}
	n := len(v)
	if f.hasOne {
		if len(f.oneBytes) <= maxIndexByteLits {
			// A few 1-byte literals: one vectorised search each.
			for _, c := range f.oneBytes {
				if id := f.one[c] - 1; seen[id] != gen && strings.IndexByte(v, c) >= 0 {
					seen[id] = gen
					found = append(found, id)
				}
			}
		} else {
			for i := 0; i < n; i++ {
				if id := f.one[v[i]] - 1; id >= 0 && seen[id] != gen {
					seen[id] = gen
					found = append(found, id)
				}
			}
		}
	}
	g4, g3, g2 := &f.g4, &f.g3, &f.g2
	has4, has3, has2 := len(g4.ents) > 0, len(g3.ents) > 0, len(g2.ents) > 0
	avx := useGramHitsAVX2 && has4 && !has3 && !has2 && n >= 16
	if !avx {
		for _, id := range f.short {
			if seen[id] != gen && strings.Contains(v, f.lits[id]) {
				seen[id] = gen
				found = append(found, id)
			}
		}
	}
	pre := f.pre[:65536/64]
	i := 0
	if avx {
		// Eight windows at a time, 64 per call; the scalar loop below
		// takes the last windows.
		var pos [128]uint32
		var pairs *uint64 // nil: the assembly skips the pair test
		if f.shortPairs != nil {
			pairs = &f.shortPairs[0]
		}
		// done remembers grams whose every literal is found (or that
		// anchor none: a bitmap false positive), so that their next
		// windows in this value skip the table (".exe", "c:\w"… recur).
		var done [16]uint32
		nb := (n-16)/8 + 1
		p := unsafe.StringData(v)
		for b := 0; b < nb; b += 8 {
			k := min(8, nb-b)
			c := gramHitsAVX2((*byte)(unsafe.Add(unsafe.Pointer(p), b*8)), k, &g4.bits[0], &g4.bits2[0], pairs, uint64(g4.bshift), &pos[0])
			for _, o := range pos[:c] {
				j := b*8 + int(o&63)
				if o&128 != 0 {
					found = f.shortAt(v, j, seen, gen, found)
					continue
				}
				w := gramAt(v, j)
				h := w * gramMul
				slot := &done[h>>28]
				if *slot == w && w != 0 {
					continue
				}
				var all bool
				found, all = f.verifyAll(g4, v, j, w, h, seen, gen, found)
				if all {
					*slot = w
				}
			}
		}
		i = nb * 8
		if f.shortPairs != nil {
			for j := i; j+2 <= n; j++ {
				if k := uint32(v[j]) | uint32(v[j+1])<<8; f.shortPairs[k/64]&(1<<(k%64)) != 0 {
					found = f.shortAt(v, j, seen, gen, found)
				}
			}
		}
	}
	for ; i+4 <= n; i++ {
		w := gramAt(v, i)
		if k := w & 0xFFFF; pre[k/64]&(1<<(k%64)) == 0 {
			continue
		}
		if has4 {
			if h := w * gramMul; g4.has(h) {
				found = f.verify(g4, v, i, w, h, seen, gen, found)
			}
		}
		if has3 {
			w3 := w & 0xFFFFFF
			if h := w3 * gramMul; g3.has(h) {
				found = f.verify(g3, v, i, w3, h, seen, gen, found)
			}
		}
		if has2 {
			w2 := w & 0xFFFF
			if h := w2 * gramMul; g2.has(h) {
				found = f.verify(g2, v, i, w2, h, seen, gen, found)
			}
		}
	}
	// The last windows, shorter than four bytes.
	for ; i < n; i++ {
		if has3 && i+3 <= n {
			w3 := uint32(v[i]) | uint32(v[i+1])<<8 | uint32(v[i+2])<<16
			if h := w3 * gramMul; g3.has(h) {
				found = f.verify(g3, v, i, w3, h, seen, gen, found)
			}
		}
		if has2 && i+2 <= n {
			w2 := uint32(v[i]) | uint32(v[i+1])<<8
			if h := w2 * gramMul; g2.has(h) {
				found = f.verify(g2, v, i, w2, h, seen, gen, found)
			}
		}
	}
	return found
}

// shortAt finds the short literals starting at v[j:] (their first two bytes
// are v[j:j+2]).
func (f *gramFilter) shortAt(v string, j int, seen []uint32, gen uint32, found []int32) []int32 {
	for _, id := range f.shortByPair[uint16(v[j])|uint16(v[j+1])<<8] {
		if l := f.lits[id]; seen[id] != gen && j+len(l) <= len(v) && v[j:j+len(l)] == l {
			seen[id] = gen
			found = append(found, id)
		}
	}
	return found
}

// verify checks the literals of x anchored on gram g (hash h) at v[i:].
func (f *gramFilter) verify(x *gramIndex, v string, i int, g, h uint32, seen []uint32, gen uint32, found []int32) []int32 {
	found, _ = f.verifyAll(x, v, i, g, h, seen, gen, found)
	return found
}

// verifyAll is verify that also reports whether every literal anchored on
// the gram is now found (true too when the gram anchors none).
func (f *gramFilter) verifyAll(x *gramIndex, v string, i int, g, h uint32, seen []uint32, gen uint32, found []int32) ([]int32, bool) {
	mask := uint32(len(x.tab) - 1)
	for j := h >> x.tshift; ; j = (j + 1) & mask {
		sl := &x.tab[j]
		if sl.n == 0 {
			return found, true
		}
		if sl.gram != g {
			continue
		}
		// A gram's first literal is kept in its slot: no further memory
		// access for the common gram of one literal.
		ents := unsafe.Slice(&sl.first, 1)
		if sl.n > 1 {
			ents = x.ents[sl.start : sl.start+sl.n]
		}
		all := true
		for k := range ents {
			if e := &ents[k]; seen[e.lit] != gen {
				if f.at(v, i, e) {
					seen[e.lit] = gen
					found = append(found, e.lit)
				} else {
					all = false
				}
			}
		}
		return found, all
	}
}

// at reports whether e's literal occurs in v with its gram at i. Literals
// of four bytes or fewer anchored at their start are their gram: equal.
func (f *gramFilter) at(v string, i int, e *gramEnt) bool {
	if e.off == 0 && e.n <= 4 {
		return i+int(e.n) <= len(v)
	}
	p := i - int(e.off)
	return p >= 0 && p+int(e.n) <= len(v) && v[p:p+int(e.n)] == string(f.data[e.at:e.at+uint32(e.n)])
}

// gramCount is how many sampled values held a gram; last is the sample
// number of the last one (a gram counts once a value).
type gramCount struct {
	values, last int32
}

// gramCounts counts in how many sampled values each 4-byte gram occurs: an
// open-addressing table (a few times cheaper to fill than a map, which the
// first values of every scanned field fill byte by byte).
type gramCounts struct {
	slots []gramSlotCount // values 0: empty
	shift uint32
	n     int // grams held
}

type gramSlotCount struct {
	gram uint32
	gramCount
}

// add counts the 4-byte grams of v, sample number n (a gram once a value).
func (c *gramCounts) add(v string, n int32) {
	if c.slots == nil {
		c.slots, c.shift = make([]gramSlotCount, 1<<12), 32-12
	}
	for i := 0; i+4 <= len(v); i++ {
		if c.n >= len(c.slots)*3/4 {
			c.grow()
		}
		g := gramAt(v, i)
		mask := uint32(len(c.slots) - 1)
		for j := (g * gramMul) >> c.shift; ; j = (j + 1) & mask {
			sl := &c.slots[j]
			if sl.values == 0 {
				*sl = gramSlotCount{g, gramCount{values: 1, last: n}}
				c.n++
				break
			}
			if sl.gram == g {
				if sl.last != n {
					sl.values++
					sl.last = n
				}
				break
			}
		}
	}
}

func (c *gramCounts) grow() {
	old := c.slots
	c.slots, c.shift = make([]gramSlotCount, 2*len(old)), c.shift-1
	mask := uint32(len(c.slots) - 1)
	for _, sl := range old {
		if sl.values == 0 {
			continue
		}
		j := (sl.gram * gramMul) >> c.shift
		for c.slots[j].values != 0 {
			j = (j + 1) & mask
		}
		c.slots[j] = sl
	}
}

// values returns in how many sampled values g occurs (0 for a nil c).
func (c *gramCounts) values(g uint32) int32 {
	if c == nil || c.slots == nil {
		return 0
	}
	mask := uint32(len(c.slots) - 1)
	for j := (g * gramMul) >> c.shift; ; j = (j + 1) & mask {
		sl := &c.slots[j]
		if sl.values == 0 {
			return 0
		}
		if sl.gram == g {
			return sl.values
		}
	}
}

// buildLong builds the set of the 8-byte grams of the last minLongLiteral
// bytes of the filter's literals (none shorter).
func (f *gramFilter) buildLong() {
	var grams []uint64
	for _, id := range f.ids {
		l := f.lits[id]
		l = l[len(l)-minLongLiteral:]
		for i := 0; i+8 <= len(l); i++ {
			grams = append(grams, binary.LittleEndian.Uint64([]byte(l[i:i+8])))
		}
	}
	bits := uint32(4)
	for 1<<bits < 2*len(grams) {
		bits++
	}
	f.long = make([]uint64, 1<<bits)
	f.longShift = 64 - bits
	mask := uint64(len(f.long) - 1)
	f.longBits = make([]uint64, (1<<longBitsLog)/64)
	for _, g := range grams {
		if g == 0 {
			f.longZero = true
			continue
		}
		b := (g * longMul) >> (64 - longBitsLog)
		f.longBits[b/64] |= 1 << (b % 64)
		j := (g * longMul) >> f.longShift
		for f.long[j] != 0 && f.long[j] != g {
			j = (j + 1) & mask
		}
		f.long[j] = g
	}
}

// mayHoldLong reports whether v may hold a literal of f (see long): false
// means none occurs. A literal's last minLongLiteral bytes, at q, cover the
// longStride windows starting at q…q+longStride-1, one of which starts at
// a multiple of longStride, and that window is one of the grams in long.
func (f *gramFilter) mayHoldLong(v string) bool {
	long, shift := f.long, f.longShift
	mask := uint64(len(long) - 1)
	for i := 0; i+8 <= len(v); i += longStride {
		g := uint64(v[i]) | uint64(v[i+1])<<8 | uint64(v[i+2])<<16 | uint64(v[i+3])<<24 |
			uint64(v[i+4])<<32 | uint64(v[i+5])<<40 | uint64(v[i+6])<<48 | uint64(v[i+7])<<56
		if g == 0 {
			if f.longZero {
				return true
			}
			continue
		}
		h := g * longMul
		if b := h >> (64 - longBitsLog); f.longBits[b/64]&(1<<(b%64)) == 0 {
			continue
		}
		for j := h >> shift; long[j] != 0; j = (j + 1) & mask {
			if long[j] == g {
				return true
			}
		}
	}
	return false
}
