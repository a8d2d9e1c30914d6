//go:build !amd64

package detections

// Other architectures have none of the AVX2 routines: useGramHitsAVX2 is
// false, so the gram scan, the pair search and case folding take their
// portable paths and never call these.

var useGramHitsAVX2 = false

func gramHitsAVX2(v *byte, nblocks int, bits, bits2, pairs *uint64, shift uint64, out *uint32) int {
	panic("gramHitsAVX2 without AVX2")
}

func pairScanAVX2(a, b *byte, blocks int, c1, c2 byte) (int, uint32) {
	panic("pairScanAVX2 without AVX2")
}

func foldASCIIAVX2(dst, src *byte, n int) int { return 0 }

func needsFoldAVX2(src *byte, n int) (bool, int) { return false, 0 }
