package importers

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"
)

// jscanner is a small JSON scanner over one object held in memory. It reads
// only what the importers need: object members, strings (unescaped on
// demand) and literals; anything else is skipped as raw text. It never
// panics and never recurses deeper than maxJSONDepth.
type jscanner struct {
	b []byte
	i int
}

// maxJSONDepth bounds the nesting the importers descend into.
const maxJSONDepth = 32

// jsonError is a syntax error at a byte offset of the scanned text.
type jsonError struct {
	off int
	msg string
}

func (e *jsonError) Error() string {
	return fmt.Sprintf("JSON syntax error at byte %d: %s", e.off+1, e.msg)
}

func (s *jscanner) fail(msg string) error { return &jsonError{off: s.i, msg: msg} }

func (s *jscanner) reset(b []byte) { s.b, s.i = b, 0 }

func (s *jscanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, 0 at the end.
func (s *jscanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// end reports an error unless only spaces are left.
func (s *jscanner) end() error {
	if s.ws(); s.i < len(s.b) {
		return s.fail("unexpected data after the object")
	}
	return nil
}

// str reads a string and returns its raw (still escaped) contents and
// whether they hold an escape.
func (s *jscanner) str() (raw []byte, esc bool, err error) {
	if s.peek() != '"' {
		return nil, false, s.fail("expected a string")
	}
	start := s.i + 1
	pos := start
	for {
		j := bytes.IndexByte(s.b[pos:], '"')
		if j < 0 {
			s.i = len(s.b)
			return nil, false, s.fail("unterminated string")
		}
		q := pos + j
		n := 0
		for k := q - 1; k >= start && s.b[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			raw = s.b[start:q]
			s.i = q + 1
			return raw, bytes.IndexByte(raw, '\\') >= 0, nil
		}
		pos = q + 1
	}
}

// beginObject consumes '{'.
func (s *jscanner) beginObject() error {
	if s.peek() != '{' {
		return s.fail("expected an object")
	}
	s.i++
	return nil
}

// member reads the next member's key of an object whose '{' is consumed;
// n is how many members were read before. It returns more=false after the
// closing '}'. A key with escapes is unescaped into buf.
func (s *jscanner) member(n int, buf []byte) (key []byte, more bool, err error) {
	switch s.peek() {
	case '}':
		s.i++
		return nil, false, nil
	case 0:
		return nil, false, s.fail("unterminated object")
	}
	if n > 0 {
		if s.b[s.i] != ',' {
			return nil, false, s.fail("expected ',' or '}'")
		}
		s.i++
	}
	raw, esc, err := s.str()
	if err != nil {
		return nil, false, err
	}
	if esc {
		if raw, err = appendUnescaped(buf[:0], raw); err != nil {
			return nil, false, s.fail(err.Error())
		}
	}
	if s.peek() != ':' {
		return nil, false, s.fail("expected ':'")
	}
	s.i++
	return raw, true, nil
}

// predictedMember is member for the common case of a key equal to want
// (the key at the same place in the previous record; no '"' or '\\' in
// it): it reports whether the next member's key is want, consuming it and
// its ':' if so, and consumes nothing otherwise. Keys of records of one
// source come in the same order record after record, so most are matched
// by one comparison instead of being scanned.
func (s *jscanner) predictedMember(n int, want string) bool {
	i := s.i
	b := s.b
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	if n > 0 {
		if i >= len(b) || b[i] != ',' {
			return false
		}
		i++
		for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
			i++
		}
	}
	end := i + 1 + len(want)
	if end >= len(b) || b[i] != '"' || b[end] != '"' || string(b[i+1:end]) != want {
		return false
	}
	i = end + 1
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	if i >= len(b) || b[i] != ':' {
		return false
	}
	s.i = i + 1
	return true
}

// literal reads a number, true, false or null.
func (s *jscanner) literal() ([]byte, error) {
	s.ws()
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		if c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			break
		}
		if c == '"' || c == '{' || c == '[' || c == ':' {
			return nil, s.fail(fmt.Sprintf("unexpected %q", c))
		}
		s.i++
	}
	if s.i == start {
		if s.i >= len(s.b) {
			return nil, s.fail("unexpected end of input")
		}
		return nil, s.fail(fmt.Sprintf("unexpected %q", s.b[s.i]))
	}
	lit := s.b[start:s.i]
	switch {
	case lit[0] == '-' || (lit[0] >= '0' && lit[0] <= '9'):
	case string(lit) == "true", string(lit) == "false", string(lit) == "null":
	default:
		s.i = start
		return nil, s.fail(fmt.Sprintf("invalid literal %q", preview(lit)))
	}
	return lit, nil
}

// skip passes over one value of any kind. Inside objects and arrays only
// strings and bracket depth are checked.
func (s *jscanner) skip() error {
	switch c := s.peek(); c {
	case '"':
		if s.skipStr() {
			return nil
		}
		_, _, err := s.str()
		return err
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				if s.skipStr() {
					continue
				}
				if _, _, err := s.str(); err != nil {
					return err
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return nil
				}
			}
			s.i++
		}
		return s.fail("unterminated object or array")
	}
	_, err := s.literal()
	return err
}

// appendText appends the text of the next value to dst: a string's
// unescaped contents, a literal as written, an object or array as raw JSON.
// null appends nothing and reports null=true.
func (s *jscanner) appendText(dst []byte) (out []byte, null bool, err error) {
	switch s.peek() {
	case '"':
		if out, ok := s.appendStr(dst); ok {
			return out, false, nil
		}
		raw, esc, err := s.str()
		if err != nil {
			return dst, false, err
		}
		if !esc {
			return append(dst, raw...), false, nil
		}
		out, err := appendUnescaped(dst, raw)
		if err != nil {
			return dst, false, s.fail(err.Error())
		}
		return out, false, nil
	case '{', '[':
		start := s.i
		if err := s.skip(); err != nil {
			return dst, false, err
		}
		return append(dst, s.b[start:s.i]...), false, nil
	}
	lit, err := s.literal()
	if err != nil {
		return dst, false, err
	}
	if string(lit) == "null" {
		return dst, true, nil
	}
	return append(dst, lit...), false, nil
}

// appendStr is the common case of appendText for the string at s.i (its
// '"'), in one pass over its bytes: its unescaped contents are appended to
// dst as its end is looked for. ok is false, with s.i as it was, for a
// string that is unterminated or holds a bad escape: str and
// appendUnescaped then report the error as they always have.
func (s *jscanner) appendStr(dst []byte) (out []byte, ok bool) {
	b, i, n := s.b, s.i+1, len(dst)
	for {
		j := indexQuoteOrBackslash(b[i:])
		if j < 0 {
			return dst[:n], false
		}
		dst = append(dst, b[i:i+j]...)
		i += j
		if b[i] == '"' {
			s.i = i + 1
			return dst, true
		}
		// A backslash: most are a path's escaped backslash.
		if i+1 < len(b) && (b[i+1] == '\\' || b[i+1] == '"') {
			dst = append(dst, b[i+1])
			i += 2
			continue
		}
		var good bool
		if dst, i, good = unescapeAt(dst, b, i); !good {
			return dst[:n], false
		}
	}
}

// skipStr moves past the string at s.i (its '"') and reports true, or
// reports false, with s.i as it was, when it is unterminated. Like str it
// does not check escapes: a backslash takes the byte after it.
func (s *jscanner) skipStr() bool {
	b, i := s.b, s.i+1
	for {
		j := indexQuoteOrBackslash(b[i:])
		if j < 0 {
			return false
		}
		i += j
		if b[i] == '"' {
			s.i = i + 1
			return true
		}
		i += 2
		if i > len(b) {
			return false
		}
	}
}

// indexQuoteOrBackslash returns the index of the first '"' or '\\' in b, -1
// if none: the first bytes eight at a time (a JSON value's runs between
// escapes are mostly shorter than a vectorised search's start-up), a long
// run 32 bytes at a time (AVX2).
func indexQuoteOrBackslash(b []byte) int {
	i := 0
	for ; i+8 <= len(b) && i < 16; i += 8 {
		if t := quoteOrBackslash8(b[i:]); t != 0 {
			return i + bits.TrailingZeros64(t)/8
		}
	}
	if useQuoteScanAVX2 && len(b)-i >= 32 {
		nb := (len(b) - i) / 32
		k, mask := quoteScanAVX2(&b[i], nb)
		if mask != 0 {
			return i + 32*k + bits.TrailingZeros32(mask)
		}
		i += 32 * nb
	}
	for ; i+8 <= len(b); i += 8 {
		if t := quoteOrBackslash8(b[i:]); t != 0 {
			return i + bits.TrailingZeros64(t)/8
		}
	}
	for ; i < len(b); i++ {
		if b[i] == '"' || b[i] == '\\' {
			return i
		}
	}
	return -1
}

// quoteOrBackslash8 tests b[0:8] for '"' and '\\': the lowest set bit of
// the result is the high bit of the first such byte (0: none). Bits above
// it may be false.
func quoteOrBackslash8(b []byte) uint64 {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	w := binary.LittleEndian.Uint64(b)
	q, x := w^('"'*lo), w^('\\'*lo)
	return ((q-lo)&^q | (x-lo)&^x) & hi
}

// unescapeAt decodes the escape at raw[i] (a backslash) onto dst, as
// appendUnescaped does, and returns the index after it; ok is false for an
// escape appendUnescaped rejects.
func unescapeAt(dst, raw []byte, i int) (out []byte, next int, ok bool) {
	if i+1 >= len(raw) {
		return dst, i, false
	}
	switch c := raw[i+1]; c {
	case '"', '\\', '/':
		dst = append(dst, c)
	case 'b':
		dst = append(dst, '\b')
	case 'f':
		dst = append(dst, '\f')
	case 'n':
		dst = append(dst, '\n')
	case 'r':
		dst = append(dst, '\r')
	case 't':
		dst = append(dst, '\t')
	case 'u':
		r, ok := hex4(raw[i+2:])
		if !ok {
			return dst, i, false
		}
		i += 6
		if utf16.IsSurrogate(r) {
			if r2, ok := hex4(raw[min(i+2, len(raw)):]); ok && i+1 < len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
				if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
					return utf8.AppendRune(dst, d), i + 6, true
				}
			}
			r = utf8.RuneError
		}
		return utf8.AppendRune(dst, r), i, true
	default:
		return dst, i, false
	}
	return dst, i + 2, true
}

// appendUnescaped appends a JSON string's raw contents to dst, decoding
// escapes.
func appendUnescaped(dst, raw []byte) ([]byte, error) {
	for i := 0; i < len(raw); {
		if raw[i] != '\\' {
			j := bytes.IndexByte(raw[i:], '\\')
			if j < 0 {
				return append(dst, raw[i:]...), nil
			}
			dst = append(dst, raw[i:i+j]...)
			i += j
			continue
		}
		var ok bool
		if dst, i, ok = unescapeAt(dst, raw, i); !ok {
			switch {
			case i+1 >= len(raw):
				return dst, fmt.Errorf("truncated escape")
			case raw[i+1] == 'u':
				return dst, fmt.Errorf("invalid \\u escape")
			}
			return dst, fmt.Errorf("invalid escape \\%c", raw[i+1])
		}
	}
	return dst, nil
}

// hex4 decodes four hex digits.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		v, ok := hexVal(c)
		if !ok {
			return 0, false
		}
		r = r<<4 | rune(v)
	}
	return r, true
}

func hexVal(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
