package importers

import (
	"bufio"
	"errors"
	"io"

	"github.com/quarry-sec/quarry/telemetry"
)

// auditdReader reads a raw audit log. Records sharing a serial form one
// event; an event ends at its EOE record or when a record of another serial
// starts. Each successful execve event becomes one exec Event; connect,
// bind, accept, opens for writing, unlink, rename and module loads become
// network_connection, file_event, file_delete, file_rename and driver_load
// Events (auditdactivity.go); other events are passed over.
type auditdReader struct {
	c      io.Closer
	path   string
	cfg    *config
	lines  lineReader
	group  execGroup
	open   bool // group holds records
	broken bool // the open group had a malformed record
	done   bool
	// pending is an error to return on the next call, found while an event
	// was being returned.
	pending error
}

func newAuditdReader(c io.Closer, br *bufio.Reader, path string, cfg *config) *auditdReader {
	r := &auditdReader{c: c, path: path, cfg: cfg}
	r.lines.r = br
	return r
}

// Next returns the next exec event.
func (r *auditdReader) Next() (telemetry.Event, error) {
	if err := r.pending; err != nil {
		r.pending = nil
		return telemetry.Event{}, err
	}
	for !r.done {
		raw, err := r.lines.next()
		if errors.Is(err, errLineTooLong) {
			return telemetry.Event{}, r.recordErr(r.lines.line, "line too long", err)
		}
		if err != nil {
			r.done = true
			if !errors.Is(err, io.EOF) {
				r.pending = r.recordErr(r.lines.line, "read failed", err)
			}
			if e, ok := r.flush(); ok {
				return e, nil
			}
			return r.Next()
		}
		if len(raw) == 0 {
			continue
		}
		line := string(raw)
		h, err := parseAuditHeader(line)
		if err != nil {
			return telemetry.Event{}, r.recordErr(r.lines.line, "malformed audit record", err)
		}
		var out telemetry.Event
		var have bool
		if r.open && h.serial != r.group.serial {
			out, have = r.flush()
		}
		if h.typ == "EOE" {
			if r.open && h.serial == r.group.serial {
				out, have = r.flush()
			}
		} else {
			if !r.open {
				r.group.reset(h.serial, h.time, h.node, r.lines.line)
				r.open, r.broken = true, false
			}
			if err := r.group.add(h.typ, h.body); err != nil {
				r.broken = true
				rerr := r.recordErr(r.lines.line, "malformed "+h.typ+" record", err)
				if have { // report the broken record after the finished event
					r.pending = rerr
					return out, nil
				}
				return telemetry.Event{}, rerr
			}
		}
		if have {
			return out, nil
		}
	}
	return telemetry.Event{}, io.EOF
}

// flush closes the open group and returns its event when it is an exec or
// one of the audited activities (auditdactivity.go).
func (r *auditdReader) flush() (telemetry.Event, bool) {
	if !r.open {
		return telemetry.Event{}, false
	}
	r.open = false
	if r.broken {
		return telemetry.Event{}, false
	}
	return r.group.finish(r.cfg)
}

func (r *auditdReader) recordErr(line int, reason string, err error) error {
	return &telemetry.RecordError{File: r.path, Line: line, Reason: reason, Err: err}
}

// Close closes the file.
func (r *auditdReader) Close() error { return r.c.Close() }
