package importers

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestIndexQuoteOrBackslash checks the word-at-a-time and AVX2 search
// against a byte-by-byte one: strings of every length up to 300 with no,
// one or two quotes and backslashes at every kind of position (the first
// words, a 32-byte block, the tail), on either path.
func TestIndexQuoteOrBackslash(t *testing.T) {
	naive := func(b []byte) int { return bytes.IndexAny(b, "\"\\") }
	r := rand.New(rand.NewPCG(5, 6))
	saved := useQuoteScanAVX2
	defer func() { useQuoteScanAVX2 = saved }()
	for _, avx := range []bool{false, saved} {
		useQuoteScanAVX2 = avx
		checked := 0
		for n := 0; n <= 300; n++ {
			for k := 0; k < 12; k++ {
				b := make([]byte, n)
				for i := range b {
					b[i] = byte(32 + r.IntN(95)) // printable ASCII, quotes included
					if b[i] == '"' || b[i] == '\\' {
						b[i] = 'x'
					}
				}
				if n > 0 && k > 0 {
					b[r.IntN(n)] = "\"\\"[k%2]
					if k > 6 {
						b[r.IntN(n)] = "\"\\"[(k+1)%2]
					}
				}
				if n > 1 && k == 11 {
					b[n-1] = '"' // only the last byte
					for i := range b[:n-1] {
						if b[i] == '"' || b[i] == '\\' {
							b[i] = 'y'
						}
					}
				}
				// A view into a larger buffer: the search must not read
				// the quote beyond its end.
				big := append(append([]byte(nil), b...), '"', '\\')
				if got, want := indexQuoteOrBackslash(big[:n]), naive(b); got != want {
					t.Fatalf("avx %v: indexQuoteOrBackslash(%q) = %d, want %d", avx, b, got, want)
				}
				checked++
			}
		}
		if checked < 3000 {
			t.Fatalf("%d strings checked", checked)
		}
	}
}

// BenchmarkIndexQuoteOrBackslash times the search on runs of 48 to 1,000
// bytes (a GUID, a path, a hash list, a long command line), on the AVX2
// path and the word-at-a-time one. A call on the AVX2 path should cost a
// few nanoseconds more than its bytes: its set-up once mixed a legacy SSE
// move with 256-bit registers, and each call paid a state transition
// (≈ 110 ns on the 2026 benchmark machine, where it was slower than the
// word-at-a-time path on every length below ≈ 1 KB).
func BenchmarkIndexQuoteOrBackslash(b *testing.B) {
	saved := useQuoteScanAVX2
	defer func() { useQuoteScanAVX2 = saved }()
	for _, n := range []int{48, 200, 1000} {
		buf := bytes.Repeat([]byte{'a'}, n+1)
		buf[n] = '"'
		for _, avx := range []bool{false, saved} {
			name := fmt.Sprintf("len=%d/words", n)
			if avx {
				name = fmt.Sprintf("len=%d/avx2", n)
			}
			b.Run(name, func(b *testing.B) {
				useQuoteScanAVX2 = avx
				for b.Loop() {
					if indexQuoteOrBackslash(buf) != n {
						b.Fatal("wrong index")
					}
				}
			})
		}
	}
}
