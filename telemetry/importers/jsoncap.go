package importers

import "unicode/utf8"

// stringCapper follows a JSON text byte by byte and says which bytes to
// keep so that no string literal keeps more than maxJSONString source
// bytes: the rest of a long string is dropped up to its closing quote,
// never inside an escape or a UTF-8 sequence, so the text stays valid JSON.
// It lets a reader hold a record with a 50 MB value in a few KiB.
type stringCapper struct {
	inStr, esc, skipping bool
	hex                  int // \uXXXX digits still to come
	n                    int // source bytes kept of the current string
	cut                  bool
}

// reset starts a new text.
func (s *stringCapper) reset() { *s = stringCapper{} }

// keep reports whether c, the next byte of the text, is kept.
func (s *stringCapper) keep(c byte) bool {
	if !s.inStr {
		if c == '"' {
			s.inStr, s.n = true, 0
		}
		return true
	}
	switch {
	case s.esc:
		s.esc = false
		if c == 'u' {
			s.hex = 4
		}
	case s.hex > 0:
		s.hex--
	case c == '"':
		s.inStr, s.skipping = false, false
		return true
	case c == '\\':
		s.esc = true
		if !s.skipping && s.n >= maxJSONString {
			s.skipping, s.cut = true, true
		}
	default:
		if !s.skipping && s.n >= maxJSONString && utf8.RuneStart(c) {
			s.skipping, s.cut = true, true
		}
	}
	if s.skipping {
		return false
	}
	s.n++
	return true
}

// appendKept appends the bytes of b that are kept to dst.
func (s *stringCapper) appendKept(dst, b []byte) []byte {
	for _, c := range b {
		if s.keep(c) {
			dst = append(dst, c)
		}
	}
	return dst
}
