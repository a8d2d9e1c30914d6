package intel

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// maxLine bounds a plain list's line.
const maxLine = 64 << 10

// ReadPlain reads a plain list: one indicator per line, its type detected
// (see Detect); blank lines and text after # are ignored. A line whose value
// is not an indicator is skipped and reported by file:line.
func ReadPlain(r io.Reader, name string, o Options) (*Feed, error) {
	f := newFeed(FormatPlain, name, o)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	line := 0
	for sc.Scan() {
		line++
		s := sc.Text()
		if i := strings.IndexByte(s, '#'); i >= 0 {
			s = s[:i]
		}
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		// "value,comment" and "value<TAB>comment" lists keep the first field.
		if i := strings.IndexAny(s, "\t,; "); i > 0 {
			s = s[:i]
		}
		ref := fmt.Sprintf("%s:%d", name, line)
		t, v, err := Detect(s)
		if err != nil {
			f.skip(ref, err.Error(), false)
			continue
		}
		f.add(Indicator{Type: t, Value: v, Ref: ref})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", name, line+1, err)
	}
	return f, nil
}
