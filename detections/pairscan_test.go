package detections

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// TestIndexRare compares indexRare with strings.Index on values of every
// length up to 200 with the literal planted at every position, near misses
// (one of its two rare bytes right, the rest wrong) and random bytes, with
// the vector loop and without.
func TestIndexRare(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	lits := []string{`\powershell`, `iex`, ` /c `, `.dll`, `ab`, `\\`, `qq`, `:\program files (x86)\`, strings.Repeat("x", 40) + "y"}
	for _, avx := range []bool{false, true} {
		if avx && !useGramHitsAVX2 {
			continue
		}
		saved := useGramHitsAVX2
		useGramHitsAVX2 = avx
		for _, lit := range lits {
			o1, o2 := rarePair(lit)
			if o1 >= o2 || int(o2) >= len(lit) {
				t.Fatalf("rarePair(%q) = %d, %d", lit, o1, o2)
			}
			for n := 0; n <= 200; n++ {
				b := make([]byte, n)
				for i := range b {
					b[i] = " \\.abcxyz"[r.IntN(9)]
				}
				check := func(v string) {
					if got, want := indexRare(v, lit, o1, o2), strings.Index(v, lit); got != want {
						t.Fatalf("avx %v: indexRare(%q, %q) = %d, want %d", avx, v, lit, got, want)
					}
				}
				check(string(b))
				for p := 0; p+len(lit) <= n; p += 1 + r.IntN(7) {
					c := append([]byte(nil), b...)
					copy(c[p:], lit)
					check(string(c))
					// near miss: the two rare bytes in place, another byte off
					c[p+int(o1)], c[p+int(o2)] = lit[o1], lit[o2]
					for i := 0; i < len(lit); i++ {
						if i != int(o1) && i != int(o2) {
							c[p+i] = lit[i] ^ 1
							break
						}
					}
					check(string(c))
					// a near miss, then the literal a block or so later
					for _, d := range []int{1, 31, 32, 33, 64} {
						if q := p + d; q+len(lit) <= n && d >= len(lit) {
							e := append([]byte(nil), c...)
							copy(e[q:], lit)
							check(string(e))
						}
					}
				}
			}
		}
		useGramHitsAVX2 = saved
	}
}

func FuzzIndexRare(f *testing.F) {
	f.Add("c:\\windows\\system32\\windowspowershell\\v1.0\\powershell.exe -c iex", "\\powershell")
	f.Fuzz(func(t *testing.T, v, lit string) {
		if len(lit) < 2 {
			return
		}
		o1, o2 := rarePair(lit)
		if got, want := indexRare(v, lit, o1, o2), strings.Index(v, lit); got != want {
			t.Fatalf("indexRare(%q, %q) = %d, want %d", v, lit, got, want)
		}
	})
}

// BenchmarkIndexRare times indexRare on a command line of ≈ 200 bytes
// that does not hold the literal, with the vector loop and without (see
// BenchmarkIndexQuoteOrBackslash in telemetry/importers for why a call's
// set-up matters).
func BenchmarkIndexRare(b *testing.B) {
	v := `"C:\Program Files\Git\cmd\git.exe" -c core.quotepath=false -c color.ui=false log --format=%H%n%aN%n%aE%n%at%n%P%n%D%n%B -n 50 --skip=0 fetch --all --prune --tags --recurse-submodules=on-demand status --porcelain=v2`
	lit := `\powershell.exe`
	o1, o2 := rarePair(lit)
	saved := useGramHitsAVX2
	defer func() { useGramHitsAVX2 = saved }()
	for _, avx := range []bool{false, saved} {
		name := "bytes"
		if avx {
			name = "avx2"
		}
		b.Run(name, func(b *testing.B) {
			useGramHitsAVX2 = avx
			for b.Loop() {
				if indexRare(v, lit, o1, o2) != -1 {
					b.Fatal("found")
				}
			}
		})
	}
}
