package importers

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"time"

	"github.com/quarry-sec/quarry/telemetry"
)

// winJSONReader reads Windows events as JSON. In line mode every line is one
// object (flat or nested) and a malformed line is skipped exactly; in stream
// mode objects may span lines, follow one another or sit in an array.
type winJSONReader struct {
	c      io.Closer
	path   string
	cfg    *config
	stream bool
	lines  lineReader
	split  objectSplitter
	scan   jscanner
	fields fieldSet
	names  nameCache
	count  int64 // objects read, for record numbers
	done   bool
}

func newWinJSONReader(c io.Closer, br *bufio.Reader, path string, cfg *config) *winJSONReader {
	head, _ := br.Peek(sniffSize)
	r := &winJSONReader{c: c, path: path, cfg: cfg, stream: isMultiLineJSON(head)}
	r.lines.r = br
	r.lines.json = true
	r.split.r = br
	return r
}

// isMultiLineJSON reports whether the file's first object spans more than
// its first line (pretty-printed) or the file is an array.
func isMultiLineJSON(head []byte) bool {
	body := bytes.TrimLeft(bytes.TrimPrefix(head, utf8BOM), " \t\r\n")
	if len(body) == 0 || body[0] == '[' {
		return len(body) > 0
	}
	i := bytes.IndexByte(body, '\n')
	if i < 0 {
		return false
	}
	line := bytes.TrimRight(body[:i], " \t\r")
	return len(line) == 0 || line[len(line)-1] != '}'
}

// Next returns the next event.
func (r *winJSONReader) Next() (telemetry.Event, error) {
	var e telemetry.Event
	err := r.next(&e, false)
	return e, err
}

// NextInto decodes the next event into ev, reusing ev.Fields (cleared and
// refilled): see IntoReader.
func (r *winJSONReader) NextInto(ev *telemetry.Event) error {
	return r.next(ev, true)
}

// next decodes the next event into ev: with reuse, into ev.Fields' storage
// with values sharing the reader's buffer (NextInto), else into fresh
// fields. On an error ev is zeroed.
func (r *winJSONReader) next(ev *telemetry.Event, reuse bool) error {
	if r.done {
		*ev = telemetry.Event{}
		return io.EOF
	}
	if r.stream {
		return r.nextStream(ev, reuse)
	}
	for {
		line, err := r.lines.next()
		if errors.Is(err, errLineTooLong) {
			*ev = telemetry.Event{}
			return r.recordErr(r.lines.line, 0, "line too long", err)
		}
		if err != nil {
			*ev = telemetry.Event{}
			return r.finish(err)
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		r.count++
		return r.decode(ev, reuse, line, r.lines.line, 0)
	}
}

func (r *winJSONReader) nextStream(ev *telemetry.Event, reuse bool) error {
	obj, line, err := r.split.next()
	var se *splitError
	switch {
	case errors.As(err, &se):
		*ev = telemetry.Event{}
		return r.recordErr(se.line, 0, se.msg, nil)
	case err != nil:
		*ev = telemetry.Event{}
		return r.finish(err)
	}
	r.count++
	return r.decode(ev, reuse, obj, line, r.count)
}

// decode turns one JSON object into an Event.
func (r *winJSONReader) decode(ev *telemetry.Event, reuse bool, obj []byte, line int, record int64) error {
	r.scan.reset(obj)
	r.fields.reset()
	if err := decodeWinJSON(&r.scan, &r.fields); err != nil {
		*ev = telemetry.Event{}
		return r.recordErr(line, record, "malformed JSON event", err)
	}
	id := record
	if id == 0 {
		id = int64(line)
	}
	var f telemetry.Fields
	if reuse {
		f = ev.Fields // its storage, refilled
		r.fields.fillShared(&f)
	} else {
		f = r.fields.build()
	}
	e, err := r.cfg.winEvent(f, time.Time{}, id, &r.names)
	if err != nil {
		*ev = telemetry.Event{}
		return r.recordErr(line, record, "unusable Windows event", err)
	}
	e.Truncated = e.Truncated || r.lines.cut || (r.stream && r.split.caps.cut)
	*ev = e
	return nil
}

func (r *winJSONReader) recordErr(line int, record int64, reason string, err error) error {
	return &telemetry.RecordError{File: r.path, Line: line, Record: record, Reason: reason, Err: err}
}

// finish ends the stream: io.EOF, or a read error naming the file.
func (r *winJSONReader) finish(err error) error {
	r.done = true
	if errors.Is(err, io.EOF) {
		return io.EOF
	}
	return &telemetry.RecordError{File: r.path, Line: r.lines.line + r.split.line, Reason: "read failed", Err: err}
}

// Close closes the file.
func (r *winJSONReader) Close() error { return r.c.Close() }
