package importers

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// maxLineSize bounds one line (a PowerShell script block can be large);
// a longer line is reported and skipped.
const maxLineSize = 64 << 20

// errLineTooLong marks a line over maxLineSize.
var errLineTooLong = fmt.Errorf("line longer than %d bytes", maxLineSize)

// lineReader yields lines without their line ending, counting them.
type lineReader struct {
	r    *bufio.Reader
	line int    // number of the last line returned
	long []byte // holds a line longer than r's buffer
}

// next returns the next line, valid until the following call. It returns
// errLineTooLong (with line counted) for an oversized line, io.EOF at the
// end, and a read error otherwise.
func (l *lineReader) next() ([]byte, error) {
	b, err := l.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		l.long = append(l.long[:0], b...)
		for errors.Is(err, bufio.ErrBufferFull) {
			b, err = l.r.ReadSlice('\n')
			if len(l.long)+len(b) > maxLineSize {
				l.long = l.long[:0]
				for errors.Is(err, bufio.ErrBufferFull) {
					_, err = l.r.ReadSlice('\n')
				}
				if err != nil && !errors.Is(err, io.EOF) {
					return nil, err
				}
				l.line++
				return nil, errLineTooLong
			}
			l.long = append(l.long, b...)
		}
		b = l.long
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
