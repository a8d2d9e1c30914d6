package importers

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/quarry-sec/quarry/telemetry"
)

// auditdJSONReader reads one JSON object per audit event per line:
// {"audit_ts", "audit_serial", "SYSCALL": {…}, "EXECVE": {…}, "argv": […],
// "cmdline", "CWD": {"cwd"}, "PROCTITLE": {"proctitle"}}. Values in SYSCALL
// and EXECVE are already decoded (no quotes, no hex). Each successful execve
// becomes one exec Event; other lines are passed over.
type auditdJSONReader struct {
	c     io.Closer
	path  string
	cfg   *config
	lines lineReader
	group execGroup
	done  bool
}

// auditJSONEvent is the shape of one line. Audit events are few next to
// Windows ones, so encoding/json into a struct is fast enough here.
type auditJSONEvent struct {
	TS        json.Number       `json:"audit_ts"`
	Serial    json.Number       `json:"audit_serial"`
	Node      string            `json:"node"`
	Hostname  string            `json:"hostname"`
	Syscall   map[string]string `json:"SYSCALL"`
	Execve    map[string]string `json:"EXECVE"`
	Argv      []string          `json:"argv"`
	CWD       map[string]string `json:"CWD"`
	Proctitle map[string]string `json:"PROCTITLE"`
}

func newAuditdJSONReader(c io.Closer, br *bufio.Reader, path string, cfg *config) *auditdJSONReader {
	r := &auditdJSONReader{c: c, path: path, cfg: cfg}
	r.lines.r = br
	r.lines.json = true
	return r
}

// Next returns the next exec event.
func (r *auditdJSONReader) Next() (telemetry.Event, error) {
	for !r.done {
		raw, err := r.lines.next()
		if errors.Is(err, errLineTooLong) {
			return telemetry.Event{}, r.recordErr("line too long", err)
		}
		if err != nil {
			r.done = true
			if errors.Is(err, io.EOF) {
				return telemetry.Event{}, io.EOF
			}
			return telemetry.Event{}, r.recordErr("read failed", err)
		}
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		var ev auditJSONEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			return telemetry.Event{}, r.recordErr("malformed audit JSON event", err)
		}
		if err := r.fill(&ev); err != nil {
			return telemetry.Event{}, r.recordErr("unusable audit JSON event", err)
		}
		if r.group.isExec() {
			e := r.group.event(r.cfg)
			e.Truncated = e.Truncated || r.lines.cut
			return e, nil
		}
	}
	return telemetry.Event{}, io.EOF
}

// fill loads the group from one decoded line.
func (r *auditdJSONReader) fill(ev *auditJSONEvent) error {
	var t time.Time
	if ev.TS != "" {
		secs, err := strconv.ParseFloat(string(ev.TS), 64)
		if err != nil || secs < 0 || secs > 1<<40 {
			return fmt.Errorf("field audit_ts: %q is not epoch seconds", ev.TS)
		}
		// Keep the milliseconds exactly as written.
		if tt, ok := parseEpoch(string(ev.TS)); ok {
			t = tt
		} else {
			whole, frac := math.Modf(secs)
			t = time.Unix(int64(whole), int64(frac*1e9)).UTC()
		}
	}
	var serial int64
	if ev.Serial != "" {
		n, err := strconv.ParseInt(string(ev.Serial), 10, 64)
		if err != nil {
			return fmt.Errorf("field audit_serial: %q is not a number", ev.Serial)
		}
		serial = n
	}
	node := ev.Node
	if node == "" {
		node = ev.Hostname
	}
	g := &r.group
	g.reset(serial, t, node, r.lines.line)
	g.syscall = ev.Syscall
	if g.syscall != nil {
		for _, k := range [...]string{"a0", "a1", "a2", "a3"} {
			delete(g.syscall, k)
		}
	}
	g.hasExecve = ev.Execve != nil || ev.Argv != nil
	if ev.Argv != nil {
		g.args = append(g.args[:0], ev.Argv...)
	} else {
		for k, v := range ev.Execve {
			if err := g.addArg(auditField{key: k, value: v, quoted: true}); err != nil {
				return err
			}
		}
	}
	if ev.Execve != nil {
		if n, err := strconv.Atoi(ev.Execve["argc"]); err == nil && n >= 0 && n <= maxAuditArgs {
			g.argc = n
		}
	}
	g.cwd = ev.CWD["cwd"]
	if p := ev.Proctitle["proctitle"]; p != "" {
		if b, ok := decodeHex(p); ok {
			g.proctitle = string(b)
		} else {
			g.proctitle = p
		}
	}
	return nil
}

func (r *auditdJSONReader) recordErr(reason string, err error) error {
	return &telemetry.RecordError{File: r.path, Line: r.lines.line, Reason: reason, Err: err}
}

// Close closes the file.
func (r *auditdJSONReader) Close() error { return r.c.Close() }
