package detections

// pairScanAVX2 tests blocks of 32 positions k for a[k] == c1 and b[k] ==
// c2 (a and b point into one value at a literal's two rare bytes). It
// returns at the first block with such a position: the number of blocks
// before it and its mask (bit k: position k of the block); else blocks and
// 0. It reads a[0:32*blocks] and b[0:32*blocks].
//
//go:noescape
func pairScanAVX2(a, b *byte, blocks int, c1, c2 byte) (scanned int, mask uint32)
