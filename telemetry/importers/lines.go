package importers

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// maxLineSize bounds one line as held in memory; a longer line is reported
// and skipped (read through, not held).
const maxLineSize = MaxRecord

// errLineTooLong marks a line over maxLineSize.
var errLineTooLong = fmt.Errorf("line longer than %d bytes", maxLineSize)

// lineReader yields lines without their line ending, counting them.
type lineReader struct {
	r    *bufio.Reader
	line int    // number of the last line returned
	long []byte // holds a line longer than r's buffer
	// json makes a line longer than r's buffer keep only the first
	// maxJSONString bytes of each JSON string (see stringCapper); cut says
	// the last line returned lost some.
	json bool
	cut  bool
	caps stringCapper
}

// next returns the next line, valid until the following call. It returns
// errLineTooLong (with line counted) for an oversized line, io.EOF at the
// end, and a read error otherwise.
func (l *lineReader) next() ([]byte, error) {
	l.cut = false
	if cap(l.long) > 1<<20 {
		l.long = nil // a past long line's buffer is not kept
	}
	b, err := l.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		l.caps.reset()
		l.long = l.appendLong(l.long[:0], b)
		for errors.Is(err, bufio.ErrBufferFull) {
			b, err = l.r.ReadSlice('\n')
			l.long = l.appendLong(l.long, b)
			if len(l.long) > maxLineSize {
				l.long = nil // read the rest through, holding none of it
				for errors.Is(err, bufio.ErrBufferFull) {
					_, err = l.r.ReadSlice('\n')
				}
				if err != nil && !errors.Is(err, io.EOF) {
					return nil, err
				}
				l.line++
				return nil, errLineTooLong
			}
		}
		b = l.long
		l.cut = l.caps.cut
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if len(b) == 0 && err != nil {
		return nil, io.EOF
	}
	l.line++
	b = bytes.TrimSuffix(b, []byte{'\n'})
	b = bytes.TrimSuffix(b, []byte{'\r'})
	if l.line == 1 {
		b = bytes.TrimPrefix(b, utf8BOM)
	}
	return b, nil
}

// appendLong appends a piece of a long line, capping JSON strings in json
// mode.
func (l *lineReader) appendLong(dst, b []byte) []byte {
	if !l.json {
		return append(dst, b...)
	}
	return l.caps.appendKept(dst, b)
}
