package importers

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// maxObjectSize bounds one multi-line JSON object as held in memory, its
// long strings cut (see stringCapper).
const maxObjectSize = MaxRecord

// objectSplitter cuts a stream of JSON objects — one after another, possibly
// pretty-printed, possibly inside a top-level array — into single objects.
// It tracks only strings and brace depth; the objects are parsed afterwards.
type objectSplitter struct {
	r    *bufio.Reader
	buf  []byte
	line int // 0-based count of newlines consumed
	// caps cuts long strings; caps.cut says the last object lost some.
	caps stringCapper
}

// splitError is a stretch of the stream that is not an object; the splitter
// has skipped past it.
type splitError struct {
	line int
	msg  string
}

func (e *splitError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.msg) }

// next returns the next object and the 1-based line it starts on. The
// object is valid until the following call.
func (s *objectSplitter) next() ([]byte, int, error) {
	for {
		c, err := s.r.ReadByte()
		if err != nil {
			return nil, 0, err
		}
		switch c {
		case '\n':
			s.line++
		case ' ', '\t', '\r', ',', '[', ']':
		case '{':
			return s.object()
		default:
			if c == 0xef && s.line == 0 { // a UTF-8 byte order mark
				if b, _ := s.r.Peek(2); len(b) == 2 && b[0] == 0xbb && b[1] == 0xbf {
					s.r.Discard(2)
					continue
				}
			}
			line := s.line + 1
			if err := s.skipLine(); err != nil && !errors.Is(err, io.EOF) {
				return nil, 0, err
			}
			return nil, 0, &splitError{line: line, msg: fmt.Sprintf("unexpected %q outside an object", c)}
		}
	}
}

// object reads the rest of an object whose '{' was read.
func (s *objectSplitter) object() ([]byte, int, error) {
	start := s.line + 1
	if cap(s.buf) > 1<<20 {
		s.buf = nil // a past large object's buffer is not kept
	}
	s.buf = append(s.buf[:0], '{')
	s.caps.reset()
	s.caps.keep('{')
	depth, inStr, esc := 1, false, false
	for depth > 0 {
		c, err := s.r.ReadByte()
		if errors.Is(err, io.EOF) {
			return nil, 0, &splitError{line: start, msg: "unterminated object at the end of the file"}
		}
		if err != nil {
			return nil, 0, err
		}
		if len(s.buf) >= maxObjectSize {
			s.skipLine()
			return nil, 0, &splitError{line: start, msg: fmt.Sprintf("object longer than %d bytes", maxObjectSize)}
		}
		if s.caps.keep(c) {
			s.buf = append(s.buf, c)
		}
		switch {
		case c == '\n':
			s.line++
			if inStr { // JSON strings hold no raw newline: resynchronise here
				return nil, 0, &splitError{line: start, msg: "line break inside a string"}
			}
		case inStr:
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
		case c == '"':
			inStr = true
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
		}
	}
	return s.buf, start, nil
}

func (s *objectSplitter) skipLine() error {
	for {
		c, err := s.r.ReadByte()
		if err != nil {
			return err
		}
		if c == '\n' {
			s.line++
			return nil
		}
	}
}
