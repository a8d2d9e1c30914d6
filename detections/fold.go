package detections

import (
	"encoding/binary"
	"slices"
	"unicode"
	"unicode/utf8"
	"unsafe"
)

// appendFold appends s case-folded (lower-cased rune by rune) to dst. ASCII
// takes a fast path, 32 bytes at a time with AVX2, else eight. Rule literals and event values
// are folded by the same function, so case-insensitive comparison is byte
// comparison.
func appendFold(dst []byte, s string) []byte {
	n := len(dst)
	dst = slices.Grow(dst, len(s))[:n+len(s)]
	out := dst[n:]
	src := unsafe.Slice(unsafe.StringData(s), len(s))
	i := 0
	if useGramHitsAVX2 && len(src) >= 32 {
		i = foldASCIIAVX2(unsafe.SliceData(out), unsafe.SliceData(src), len(src))
	}
	for ; i+8 <= len(src); i += 8 {
		x := binary.LittleEndian.Uint64(src[i:])
		if x&0x8080808080808080 != 0 {
			break
		}
		// Bytes are < 0x80: no carry crosses a byte. A byte gets bit 7 in
		// ge when ≥ 'A' and in gt when > 'Z'.
		ge := x + 0x3f3f3f3f3f3f3f3f // 0x80 - 'A'
		gt := x + 0x2525252525252525 // 0x80 - 'Z' - 1
		upper := (ge &^ gt) & 0x8080808080808080
		binary.LittleEndian.PutUint64(out[i:], x|upper>>2)
	}
	for ; i < len(src); i++ {
		c := src[i]
		if c >= utf8.RuneSelf {
			return appendFoldUnicode(dst[:n+i], s[i:])
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		out[i] = c
	}
	return dst
}

func appendFoldUnicode(dst []byte, s string) []byte {
	for _, r := range s {
		dst = utf8.AppendRune(dst, unicode.ToLower(r))
	}
	return dst
}

// needsFold reports whether folding would change s.
func needsFold(s string) bool {
	i := 0
	if useGramHitsAVX2 && len(s) >= 32 {
		found, checked := needsFoldAVX2(unsafe.StringData(s), len(s))
		if found {
			return true
		}
		i = checked
	}
	for ; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf || ('A' <= c && c <= 'Z') {
			return true
		}
	}
	return false
}

// fold returns s case-folded.
func fold(s string) string {
	if !needsFold(s) {
		return s
	}
	return string(appendFold(make([]byte, 0, len(s)), s))
}
