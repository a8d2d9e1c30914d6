package detections

import (
	"math/rand/v2"
	"testing"
)

// naiveClassRun is hasClassRun's definition, byte by byte.
func naiveClassRun(s string, cls *[256]bool, n int) bool {
	run := 0
	for i := 0; i < len(s); i++ {
		if !cls[s[i]] {
			run = 0
			continue
		}
		if run++; run >= n {
			return true
		}
	}
	return false
}

func TestHasClassRunAgreesWithNaive(t *testing.T) {
	var hex [256]bool
	for _, c := range "0123456789abcdef" {
		hex[c] = true
	}
	r := rand.New(rand.NewPCG(1, 2))
	const alpha = "0123456789abcdefxyz -"
	for it := 0; it < 200000; it++ {
		b := make([]byte, r.IntN(160))
		// Mostly hex, so that long runs are common.
		for i := range b {
			if r.IntN(40) == 0 {
				b[i] = alpha[16+r.IntN(len(alpha)-16)]
			} else {
				b[i] = alpha[r.IntN(16)]
			}
		}
		n := 1 + r.IntN(70)
		s := string(b)
		if got, want := hasClassRun(s, &hex, n), naiveClassRun(s, &hex, n); got != want {
			t.Fatalf("hasClassRun(%q, %d) = %v, want %v", s, n, got, want)
		}
	}
}
