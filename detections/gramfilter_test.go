package detections

import (
	"math/rand/v2"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// naiveFind is what a gramFilter must answer: the literals of ids that are
// substrings of v.
func naiveFind(lits []string, ids []int32, v string) []int32 {
	var out []int32
	for _, id := range ids {
		if strings.Contains(v, lits[id]) {
			out = append(out, id)
		}
	}
	return out
}

func checkFilter(t *testing.T, f literalFinder, lits []string, ids []int32, v string, seen []uint32, gen uint32) {
	t.Helper()
	got := f.find(v, seen, gen, nil)
	slices.Sort(got)
	want := naiveFind(lits, ids, v)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("value %q: filter found %v, want %v", v, got, want)
	}
}

func TestGramFilterSmall(t *testing.T) {
	lits := []string{"a", "ab", "abc", "abcd", "bcde", "cdef", "xyz", "z", "zz", "powershell", "shell", "ll.e", "\xff\xfe", "é"}
	ids := make([]int32, len(lits))
	for i := range ids {
		ids[i] = int32(i)
	}
	f := newGramFilter(lits, ids)
	seen := make([]uint32, len(lits))
	for gen, v := range []string{"", "a", "ab", "abc", "abcd", "abcdef", "xabcdefx", "zz", "z", "powershell.exe", "pow", "ll.e",
		"xx\xff\xfe", "\xff", "café", "bcd", "cdefabcd"} {
		checkFilter(t, f, lits, ids, v, seen, uint32(gen+1))
	}
}

// TestGramFilterAgreesWithContains checks, for the rule set of the
// process_creation corpus, that every field's filter finds exactly the
// literals occurring in the corpus values and in random values made of
// pieces of literals.
func TestGramFilterAgreesWithContains(t *testing.T) {
	res := loadAll(t)
	evs := corpus(t, 300, false)
	s := buildSet(res.Rules, keyOf(evs[0]))
	byField := map[int][]int32{}
	for id, fid := range s.litField {
		byField[int(fid)] = append(byField[int(fid)], int32(id))
	}
	seen := make([]uint32, len(s.lits))
	gen := uint32(0)
	r := rand.New(rand.NewPCG(3, 4))
	values := 0
	for fid, ids := range byField {
		if fid == kwField {
			if s.kwFilter == nil {
				t.Fatal("keyword literals but no keyword filter")
			}
			f := s.kwFilter
			for _, ev := range evs {
				eachValue(ev, func(raw string) bool {
					gen++
					checkFilter(t, f, s.lits, ids, fold(raw), seen, gen)
					if len(naiveFind(s.lits, ids, fold(raw))) > 0 && !f.mayHold(raw) {
						t.Fatalf("keyword literal in %q but mayHold is false", raw)
					}
					values++
					return false
				})
			}
		}
		var f literalFinder
		if fid != kwField {
			f = s.filters[fid]
		}
		for _, ev := range evs {
			if fid == kwField {
				break
			}
			raw, ok, _ := lookupField(ev, fieldName(fid), nil)
			if !ok {
				continue
			}
			gen++
			checkFilter(t, f, s.lits, ids, fold(raw), seen, gen)
			values++
		}
		var kw *gramFilter
		if fid == kwField {
			f, kw = s.kwFilter, s.kwFilter
		}
		for range 300 {
			var b strings.Builder
			for n := r.IntN(12); n > 0; n-- {
				switch r.IntN(3) {
				case 0:
					l := s.lits[ids[r.IntN(len(ids))]]
					i, j := r.IntN(len(l)+1), r.IntN(len(l)+1)
					b.WriteString(l[min(i, j):max(i, j)])
				case 1:
					b.WriteString(s.lits[ids[r.IntN(len(ids))]])
				default:
					b.WriteByte(byte(r.IntN(256)))
				}
			}
			gen++
			checkFilter(t, f, s.lits, ids, b.String(), seen, gen)
			values++
			// mayHold on an upper-cased form of a folded value.
			up := strings.ToUpper(b.String())
			if kw != nil && len(naiveFind(s.lits, ids, fold(up))) > 0 && !kw.mayHold(up) {
				t.Fatalf("literal in %q but mayHold is false", up)
			}
		}
	}
	t.Logf("%d literals in %d fields, %d values checked", len(s.lits), len(byField), values)
}

// TestAnchoredGramFilter checks that sampled gram counts move a literal's
// anchor off a gram every value holds, and that the re-anchored filter
// still finds exactly the literals occurring.
func TestAnchoredGramFilter(t *testing.T) {
	lits := []string{`foobarbaz`, `\users\`, `users`, `--type=gpu`, `\temp\x.ps1`, `abc`, `q`}
	ids := make([]int32, len(lits))
	for i := range ids {
		ids[i] = int32(i)
	}
	sample := []string{`"c:\users\alice\app.exe" --type=renderer --foobar`, `c:\users\bob\x.exe --type=utility /foobar`, `c:\windows\temp\a.exe`}
	grams := &gramCounts{}
	for i, v := range sample {
		grams.add(v, int32(i+1))
	}
	if c := grams.values(gramAt("sers", 0)); c != 2 {
		t.Fatalf("gram %q counted in %d values, want 2", "sers", c)
	}
	if c := grams.values(gramAt("zzzz", 0)); c != 0 {
		t.Fatalf("gram %q counted in %d values, want 0", "zzzz", c)
	}
	anchor := func(f *gramFilter, lit string) string {
		for _, sl := range f.g4.tab {
			if sl.n == 0 {
				continue
			}
			for _, e := range f.g4.ents[sl.start : sl.start+sl.n] {
				if f.lits[e.lit] == lit {
					return lit[e.off : e.off+4]
				}
			}
		}
		return ""
	}
	if a := anchor(newGramFilter(lits, ids), lits[0]); a != "foob" {
		t.Fatalf("without samples %q anchored on %q, want its first gram", lits[0], a)
	}
	f := newAnchoredGramFilter(lits, ids, grams)
	if a := anchor(f, lits[0]); strings.Contains(sample[0]+sample[1], a) {
		t.Errorf("%q anchored on %q, which the sampled values hold", lits[0], a)
	}
	if a := anchor(f, lits[3]); strings.Contains(sample[0]+sample[1], a) {
		t.Errorf("%q anchored on %q, which the sampled values hold", lits[3], a)
	}
	seen := make([]uint32, len(lits))
	for gen, v := range append(sample, `c:\users\foobarbaz.exe --type=gpu`, `foobarba`, `\temp\x.ps1q`, `abc users`, `x`, ``) {
		checkFilter(t, f, lits, ids, v, seen, uint32(gen+1))
	}
}

// TestRegexLiteralSets checks the literal sets of a few regular
// expressions, and that strings the expressions match satisfy them all.
func TestRegexLiteralSets(t *testing.T) {
	for _, c := range []struct {
		expr    string
		matches []string
		want    [][]string
	}{
		{`\\[a-zA-Z0-9]{1,32}\.[a-zA-Z0-9]{1,6}\.[ "']{1}`, []string{`c:\x\abc.dll. `, `\A.B."`},
			[][]string{{`. `, `."`, `.'`}, {`\`}, {`.`}}},
		{`"(?:\{\d\})+"\s*-f`, []string{`"{0}{1}" -f 'a'`},
			[][]string{{`"{0}`, `"{1}`, `"{2}`, `"{3}`, `"{4}`, `"{5}`, `"{6}`, `"{7}`, `"{8}`, `"{9}`}, {`-f`}, {`"`}}},
		{`(?i)\s-\s*<`, []string{"powershell - < x.ps1", "A -<"}, nil},
		// Repeated sub-expressions give one set each, not one per repeat.
		{`\+.*\+.*\+.*\+`, []string{"a+b+c+d+"}, [][]string{{`+`}}},
		{`\{.*\{.*\{`, []string{"{{{"}, [][]string{{`{`}}},
		{"`.*`.*`.*`.*`", []string{"a`b`c`d`e`"}, [][]string{{"`"}}},
	} {
		sets := regexLiteralSets(c.expr)
		if c.want != nil && !reflect.DeepEqual(sets, c.want) {
			t.Errorf("%s: sets %q, want %q", c.expr, sets, c.want)
		}
		for _, m := range c.matches {
			if !regexp.MustCompile(c.expr).MatchString(m) {
				t.Fatalf("%s does not match %q", c.expr, m)
			}
			for _, set := range sets {
				if !containsOneOf(fold(m), set) {
					t.Errorf("%s: %q matches but contains none of %q", c.expr, m, set)
				}
			}
		}
	}
}

// TestAppendFold compares the 32- and eight-byte fast paths with folding
// byte by byte and rune by rune, and needsFold with its definition.
func TestAppendFold(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	alphabet := "AZaz@[`{09 \\\"-_.:/ÄéΣK"
	for k := range 40000 {
		var b strings.Builder
		for n := r.IntN(40 + k%3*50); n > 0; n-- {
			if r.IntN(3) == 0 { // long lower-case runs: the fast paths
				b.WriteString("abcdefghijklmnopqrstuvwxyz0123456789 -\\"[:r.IntN(39)])
			}
			if r.IntN(10) == 0 {
				b.WriteByte(byte(r.IntN(256)))
			} else {
				b.WriteByte(alphabet[r.IntN(len(alphabet))])
			}
		}
		s := b.String()
		var want []byte
		for _, c := range []byte(s) {
			if c >= 0x80 {
				want = nil
				break
			}
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			want = append(want, c)
		}
		if want == nil { // not ASCII: rune by rune from the first such byte
			i := 0
			for j := 0; j < len(s); j++ {
				if s[j] >= 0x80 {
					i = j
					break
				}
			}
			want = append([]byte(strings.ToLower(s[:i])), appendFoldUnicode(nil, s[i:])...)
		}
		pre := []byte("pre")
		if got := appendFold(pre, s); string(got) != "pre"+string(want) {
			t.Fatalf("appendFold(%q) = %q, want %q", s, got[3:], want)
		}
		if got, want := needsFold(s), strings.ContainsFunc(s, func(c rune) bool { return c >= 0x80 || 'A' <= c && c <= 'Z' }); got != want {
			t.Fatalf("needsFold(%q) = %v, want %v", s, got, want)
		}
	}
}

// TestMayHoldFindsEveryOccurrence checks mayHold's strided window test on
// pure ASCII values: whatever the literals' lengths and the occurrence's
// offset, a value holding a literal (in any case) answers true.
func TestMayHoldFindsEveryOccurrence(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 9))
	word := func(n int) string { return randomWord(r, n) }
	for range 300 {
		var lits []string
		var ids []int32
		for k := 1 + r.IntN(5); k > 0; k-- {
			ids = append(ids, int32(len(lits)))
			lits = append(lits, word(4+r.IntN(12)))
		}
		f := newGramFilter(lits, ids)
		for range 200 {
			l := lits[r.IntN(len(lits))]
			v := word(r.IntN(40)) + strings.ToUpper(l) + word(r.IntN(40))
			if !f.mayHold(v) {
				t.Fatalf("literal %q in %q but mayHold is false (literals %q)", l, v, lits)
			}
			if u := "é" + v + "\xff"; !f.mayHold(u) {
				t.Fatalf("literal %q in %q but mayHold is false (literals %q)", l, u, lits)
			}
			// A rune beyond ASCII that folds to an ASCII letter.
			if k := strings.IndexAny(l, "ki"); k >= 0 {
				special := "\u212a" // Kelvin sign → k
				if l[k] == 'i' {
					special = "\u0130" // İ → i
				}
				u := word(r.IntN(20)) + l[:k] + special + l[k+1:] + word(r.IntN(20))
				if len(naiveFind(lits, ids, fold(u))) > 0 && !f.mayHold(u) {
					t.Fatalf("literal %q in fold(%q) but mayHold is false (literals %q)", l, u, lits)
				}
			}
			// A small filter is exact on ASCII values.
			if f.few != nil {
				w := word(r.IntN(80))
				if got, want := f.mayHold(w), len(naiveFind(lits, ids, fold(w))) > 0; got != want {
					t.Fatalf("few-literal mayHold(%q) = %v, want %v (literals %q)", w, got, want, lits)
				}
			}
		}
	}
}

// TestGramHitsAVX2MatchesScalar checks the vectorised window test against
// the scalar loop: random values of every length around the 16-byte load
// and the 64-window batches, with literals planted at every offset
// (including the last windows, which the scalar loop takes).
func TestGramHitsAVX2MatchesScalar(t *testing.T) {
	if !useGramHitsAVX2 {
		t.Skip("no AVX2 on this machine: the scalar loop is the only one")
	}
	defer func() { useGramHitsAVX2 = true }()
	r := rand.New(rand.NewPCG(11, 12))
	word := func(n int) string { return randomWord(r, n) }
	var lits []string
	var ids []int32
	for i := range 300 {
		ids = append(ids, int32(i))
		n := 4 + r.IntN(9)
		if i%40 == 0 {
			n = 2 + i%2 // a few literals of 2 and 3 bytes: the pair bitmap
		}
		lits = append(lits, word(n))
	}
	f := newGramFilter(lits, ids)
	if len(f.g3.ents) > 0 || len(f.g2.ents) > 0 || len(f.g4.ents) == 0 || len(f.short) == 0 {
		t.Fatal("want a filter of 4-byte grams and a few short literals")
	}
	seen := make([]uint32, len(lits))
	gen := uint32(0)
	for n := 0; n < 200; n++ {
		for range 20 {
			v := []byte(word(n))
			if n >= 4 {
				l := lits[r.IntN(len(lits))]
				if len(l) <= n {
					copy(v[r.IntN(n-len(l)+1):], l)
				}
			}
			gen++
			useGramHitsAVX2 = true
			got := slices.Clone(f.find(string(v), seen, gen, nil))
			gen++
			useGramHitsAVX2 = false
			want := f.find(string(v), seen, gen, nil)
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("value %q: AVX2 found %v, scalar %v", v, got, want)
			}
			if w := naiveFind(lits, ids, string(v)); !slices.Equal(got, w) {
				t.Fatalf("value %q: found %v, want %v", v, got, w)
			}
		}
	}
}

// randomWord is n bytes of letters, digits and path punctuation.
func randomWord(r *rand.Rand, n int) string {
	const alpha = `abcdefghijklmnopqrstuvwxyz0123456789\.:- "`
	b := make([]byte, n)
	for i := range b {
		b[i] = alpha[r.IntN(len(alpha))]
	}
	return string(b)
}

// TestLongLiteralPrefilter checks the strided 8-byte test of filters whose
// literals are all long (hash values): with literals planted at every
// offset of random hex values the filter finds exactly what strings.Contains
// does, and a value without them is ruled out before the scan.
func TestLongLiteralPrefilter(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	hex := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = "0123456789abcdef"[r.IntN(16)]
		}
		return string(b)
	}
	var lits []string
	var ids []int32
	for i := range 60 {
		l := []string{"imphash=", "md5=", "sha256=", ""}[i%4] + hex(minLongLiteral+r.IntN(40))
		lits = append(lits, l)
		ids = append(ids, int32(i))
	}
	f := newGramFilter(lits, ids)
	if f.long == nil {
		t.Fatal("no long-literal prefilter for literals of 16 bytes or more")
	}
	seen := make([]uint32, len(lits))
	gen := uint32(0)
	ruledOut := 0
	for range 400 {
		v := "sha1=" + hex(40) + ",md5=" + hex(32) + ",sha256=" + hex(64) + ",imphash=" + hex(r.IntN(40))
		if !f.mayHoldLong(v) {
			ruledOut++
		}
		gen++
		checkFilter(t, f, lits, ids, v, seen, gen)
		l := lits[r.IntN(len(lits))]
		for p := 0; p+len(l) <= len(v); p += 1 + r.IntN(5) {
			w := v[:p] + l + v[p+len(l):]
			gen++
			checkFilter(t, f, lits, ids, w, seen, gen)
		}
	}
	if ruledOut < 390 {
		t.Errorf("only %d of 400 values without a literal ruled out before the scan", ruledOut)
	}
}

// TestMayHoldFewPairs checks the keyword prefilter of a few literals with
// two non-letter bytes each (tested in pairs, 32 positions at a time):
// a value whose folded form holds a literal answers true, whatever the
// case, the position and the runes around it, including runes that fold
// to ASCII letters (İ, the Kelvin sign), and an ASCII value without one
// answers false.
func TestMayHoldFewPairs(t *testing.T) {
	lits := []string{`\perfc.dat`, `\kit.exe`, `a-b.c`}
	ids := []int32{0, 1, 2}
	f := newGramFilter(lits, ids)
	if !f.fewPairs {
		t.Fatalf("few = %+v: want every literal tested by a pair of bytes", f.few)
	}
	r := rand.New(rand.NewPCG(21, 22))
	filler := []string{"x", "\\", ".", " ", "®", "é", "c:\\windows\\", ".exe ", "PERFC", "-", "Kit"}
	forms := map[string][]string{
		`\perfc.dat`: {`\perfc.dat`, `\PERFC.DAT`, `\PeRfC.dAt`},
		`\kit.exe`:   {`\kit.exe`, `\KIT.EXE`, "\\\u212aIT.exe", "\\k\u0130t.exe"},
		`a-b.c`:      {`a-b.c`, `A-B.C`},
	}
	for k := range 3000 {
		var b strings.Builder
		for n := r.IntN(120); n > 0; n-- {
			b.WriteString(filler[r.IntN(len(filler))])
		}
		v := b.String()
		if k%2 == 0 {
			l := lits[r.IntN(len(lits))]
			form := forms[l][r.IntN(len(forms[l]))]
			p := r.IntN(len(v) + 1)
			for p > 0 && p < len(v) && !utf8.RuneStart(v[p]) {
				p--
			}
			v = v[:p] + form + v[p:]
		}
		holds := len(naiveFind(lits, ids, fold(v))) > 0
		if got := f.mayHold(v); holds && !got {
			t.Fatalf("%q holds a literal folded but mayHold is false", v)
		} else if !holds && got && isASCII(v) {
			t.Fatalf("ASCII %q holds no literal but mayHold is true", v)
		}
	}
}

// TestGramTableCounts: the gram table counts as a map does, gram 0 and
// colliding grams included.
func TestGramTableCounts(t *testing.T) {
	want := map[uint32]int{}
	tab := newGramTable(600)
	for i := range 600 {
		g := uint32(i%250) * 0x10000 // many share their hash's high bits
		if i%7 == 0 {
			g = 0
		}
		want[g]++
		tab.add(g)
	}
	for g := uint32(0); g < 260*0x10000; g += 0x8000 {
		if got := tab.count(g); got != want[g] {
			t.Fatalf("count(%#x) = %d, want %d", g, got, want[g])
		}
	}
}

// TestGramCountsGrow counts more grams than the first table holds: every
// gram is still counted once a value, across the table's growth.
func TestGramCountsGrow(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, 40000)
	for i := range b {
		b[i] = byte('a' + r.IntN(26))
	}
	v := string(b)
	c := &gramCounts{}
	c.add(v, 1)
	c.add(v[:len(v)/2], 2)
	if len(c.slots) <= 1<<12 {
		t.Fatalf("table of %d slots: want it grown", len(c.slots))
	}
	checked := 0
	for i := 0; i+4 <= len(v); i += 997 {
		if strings.Count(v, v[i:i+4]) > 1 {
			continue // a gram recurring elsewhere may count in the other value too
		}
		want := int32(1)
		if i+4 <= len(v)/2 {
			want = 2
		}
		if got := c.values(gramAt(v, i)); got != want {
			t.Errorf("gram %q at %d: %d values, want %d", v[i:i+4], i, got, want)
		}
		checked++
	}
	if checked < 20 {
		t.Fatalf("only %d grams checked", checked)
	}
	if got := c.values(gramAt("ZZZZ", 0)); got != 0 {
		t.Errorf("absent gram: %d values", got)
	}
}

// TestCommonLiteral checks the gram shortcut of commonLiteral against a
// search of the text: substrings of it (at every length, its end included)
// and strings that are not.
func TestCommonLiteral(t *testing.T) {
	text := commonGramText
	r := rand.New(rand.NewPCG(3, 4))
	var lits []string
	for n := 1; n <= 40; n++ {
		for k := 0; k < 20; k++ {
			i := r.IntN(len(text) - n + 1)
			lits = append(lits, text[i:i+n], text[len(text)-n:], text[i:i+n]+"\x01", "zq"+text[i:i+n])
		}
	}
	in := 0
	for _, l := range lits {
		want := strings.Contains(text, l)
		if got := commonLiteral(l); got != want {
			t.Fatalf("commonLiteral(%q) = %v, want %v", l, got, want)
		}
		if want {
			in++
		}
	}
	if in < len(lits)/4 {
		t.Fatalf("only %d of %d literals in the text", in, len(lits))
	}
}
