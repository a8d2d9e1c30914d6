package importers

import (
	"bytes"
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
