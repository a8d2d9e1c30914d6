package detections

import (
	"math/bits"
	"unsafe"
)

// Looking for one literal in a value (a contains the scan does not answer)
// by its first byte, as strings.Index does, stops at every backslash, space
// and dot of a command line. indexRare instead tests two of the literal's
// rarest bytes at their offsets, 32 positions at a time: few positions
// pass both, and each that does is compared whole.

// byteRank ranks bytes by how often they occur in typical process-creation
// text (commonGramText): the higher, the more common.
var byteRank = func() (r [256]uint16) {
	for i := 0; i < len(commonGramText); i++ {
		c := commonGramText[i]
		if r[c] < 1<<15 {
			r[c]++
		}
	}
	return r
}()

// rarePair returns the offsets of two of lit's rarest bytes (by byteRank),
// the first before the second; lit has two bytes or more.
func rarePair(lit string) (o1, o2 uint8) {
	n := min(len(lit), 256)
	a, b := -1, -1
	for i := 0; i < n; i++ {
		switch {
		case a < 0 || byteRank[lit[i]] < byteRank[lit[a]]:
			a, b = i, a
		case b < 0 || byteRank[lit[i]] < byteRank[lit[b]]:
			b = i
		}
	}
	if a > b {
		a, b = b, a
	}
	return uint8(a), uint8(b)
}

// nextPair returns the first position p ≥ from with v[p+o1] == c1, v[p+o2]
// == c2 and p+n ≤ len(v) (o1 < o2 < n), -1 if none.
func nextPair(v string, from, n, o1, o2 int, c1, c2 byte) int {
	npos := len(v) - n + 1
	k := from
	if useGramHitsAVX2 && npos-k >= 32 {
		p := unsafe.StringData(v)
		blocks, mask := pairScanAVX2((*byte)(unsafe.Add(unsafe.Pointer(p), k+o1)), (*byte)(unsafe.Add(unsafe.Pointer(p), k+o2)), (npos-k)/32, c1, c2)
		if mask != 0 {
			return k + blocks*32 + bits.TrailingZeros32(mask)
		}
		k += blocks * 32
	}
	for ; k < npos; k++ {
		if v[k+o1] == c1 && v[k+o2] == c2 {
			return k
		}
	}
	return -1
}

// indexRare returns the first index of lit in v, -1 if none; o1 < o2 are
// offsets of two bytes of lit (see rarePair), lit has two bytes or more.
func indexRare(v, lit string, o1, o2 uint8) int {
	npos := len(v) - len(lit) + 1 // positions lit may start at
	if npos <= 0 {
		return -1
	}
	c1, c2 := lit[o1], lit[o2]
	k := 0
	if useGramHitsAVX2 && npos >= 32 {
		p := unsafe.StringData(v)
		for k+32 <= npos {
			n, mask := pairScanAVX2((*byte)(unsafe.Add(unsafe.Pointer(p), k+int(o1))), (*byte)(unsafe.Add(unsafe.Pointer(p), k+int(o2))), (npos-k)/32, c1, c2)
			if mask == 0 { // every block scanned
				k += n * 32
				break
			}
			base := k + n*32
			for ; mask != 0; mask &= mask - 1 {
				if i := base + bits.TrailingZeros32(mask); v[i:i+len(lit)] == lit {
					return i
				}
			}
			k = base + 32
		}
	}
	for ; k < npos; k++ {
		if v[k+int(o1)] == c1 && v[k+int(o2)] == c2 && v[k:k+len(lit)] == lit {
			return k
		}
	}
	return -1
}
