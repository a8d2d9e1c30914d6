package detections

import "golang.org/x/sys/cpu"

// useGramHitsAVX2: gramFilter.find tests the 4-byte windows of a value
// eight at a time with AVX2 (a shuffle builds the windows, one multiply
// hashes them, one gather reads their bits of the gram bitmap).
var useGramHitsAVX2 = cpu.X86.HasAVX2

// gramHitsAVX2 tests the windows starting at v[0:8*nblocks] against two
// bitmaps (bit h>>shift of bits, h the window's hash by gramMul, and of
// bits2 by gramMul2) and writes the offsets of those whose bits are both
// set to out, plus 64; and tests the windows' first two bytes in the exact
// bitmap pairs (65,536 bits; nil: no such test), writing the offsets of
// those set, plus 128.
// It returns how many offsets it wrote.
// It reads v[0:8*nblocks+8]: the caller makes sure those bytes exist. out
// must hold 16*nblocks offsets.
//
//go:noescape
func gramHitsAVX2(v *byte, nblocks int, bits, bits2, pairs *uint64, shift uint64, out *uint32) int
