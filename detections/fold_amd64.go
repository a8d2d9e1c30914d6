package detections

// foldASCIIAVX2 lower-cases src[0:n] into dst 32 bytes at a time while the
// blocks are ASCII and returns how many bytes it wrote (a multiple of 32).
//
//go:noescape
func foldASCIIAVX2(dst, src *byte, n int) int

// needsFoldAVX2 reports whether a whole 32-byte block of src[0:n] holds an
// upper-case ASCII letter or a byte ≥ 0x80; when not, checked is how many
// bytes it tested (the rest, under 32, are the caller's).
//
//go:noescape
func needsFoldAVX2(src *byte, n int) (found bool, checked int)
