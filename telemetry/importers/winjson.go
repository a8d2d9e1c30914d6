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
	count  int64 // objects read, for record numbers
	done   bool
}

func newWinJSONReader(c io.Closer, br *bufio.Reader, path string, cfg *config) *winJSONReader {
	head, _ := br.Peek(sniffSize)
	r := &winJSONReader{c: c, path: path, cfg: cfg, stream: isMultiLineJSON(head)}
	r.lines.r = br
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
	if r.done {
		return telemetry.Event{}, io.EOF
	}
	if r.stream {
		return r.nextStream()
	}
	for {
		line, err := r.lines.next()
		if errors.Is(err, errLineTooLong) {
			return telemetry.Event{}, r.recordErr(r.lines.line, 0, "line too long", err)
		}
		if err != nil {
			return r.finish(err)
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		r.count++
		return r.decode(line, r.lines.line, 0)
	}
}

func (r *winJSONReader) nextStream() (telemetry.Event, error) {
	obj, line, err := r.split.next()
	var se *splitError
	switch {
	case errors.As(err, &se):
		return telemetry.Event{}, r.recordErr(se.line, 0, se.msg, nil)
	case err != nil:
		return r.finish(err)
	}
	r.count++
	return r.decode(obj, line, r.count)
}

// decode turns one JSON object into an Event.
func (r *winJSONReader) decode(obj []byte, line int, record int64) (telemetry.Event, error) {
	r.scan.reset(obj)
	r.fields.reset()
	if err := decodeWinJSON(&r.scan, &r.fields); err != nil {
		return telemetry.Event{}, r.recordErr(line, record, "malformed JSON event", err)
	}
	id := record
	if id == 0 {
		id = int64(line)
	}
	e, err := r.cfg.winEvent(r.fields.build(), time.Time{}, id)
	if err != nil {
		return telemetry.Event{}, r.recordErr(line, record, "unusable Windows event", err)
	}
	return e, nil
}

func (r *winJSONReader) recordErr(line int, record int64, reason string, err error) error {
	return &telemetry.RecordError{File: r.path, Line: line, Record: record, Reason: reason, Err: err}
}

// finish ends the stream: io.EOF, or a read error naming the file.
func (r *winJSONReader) finish(err error) (telemetry.Event, error) {
	r.done = true
	if errors.Is(err, io.EOF) {
		return telemetry.Event{}, io.EOF
	}
	return telemetry.Event{}, &telemetry.RecordError{File: r.path, Line: r.lines.line + r.split.line, Reason: "read failed", Err: err}
}

// Close closes the file.
func (r *winJSONReader) Close() error { return r.c.Close() }
