package importers

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/quarry-sec/quarry/telemetry"
)

// syslogXMLReader reads Sysmon for Linux events as its syslog output writes
// them: a syslog prefix, then one <Event>…</Event> XML element per line.
// Lines without an <Event> element (other programs' messages) are passed
// over.
type syslogXMLReader struct {
	names  nameCache // field names to winEvent's indexes
	c      io.Closer
	path   string
	cfg    *config
	lines  lineReader
	fields fieldSet
	done   bool
}

func newSyslogXMLReader(c io.Closer, br *bufio.Reader, path string, cfg *config) *syslogXMLReader {
	r := &syslogXMLReader{c: c, path: path, cfg: cfg}
	r.lines.r = br
	return r
}

// systemTags are the System elements kept as fields, by Sigma's names.
var systemTags = [...]string{"EventID", "Version", "Level", "Task", "Opcode", "Keywords", "EventRecordID", "Channel", "Computer"}

// Next returns the next event.
func (r *syslogXMLReader) Next() (telemetry.Event, error) {
	for !r.done {
		line, err := r.lines.next()
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
		i := bytes.Index(line, []byte("<Event"))
		if i < 0 {
			continue
		}
		r.fields.reset()
		if err := r.decode(line[i:]); err != nil {
			return telemetry.Event{}, r.recordErr("malformed Sysmon XML event", err)
		}
		e, err := r.cfg.winEvent(r.fields.build(), time.Time{}, int64(r.lines.line), &r.names)
		if err != nil {
			return telemetry.Event{}, r.recordErr("unusable Sysmon event", err)
		}
		return e, nil
	}
	return telemetry.Event{}, io.EOF
}

// decode stores one <Event> element's System and EventData fields.
func (r *syslogXMLReader) decode(x []byte) error {
	sysEnd := bytes.Index(x, []byte("</System>"))
	if sysEnd < 0 {
		return errors.New("no </System>")
	}
	sys := x[:sysEnd]
	for _, tag := range systemTags {
		if v, ok := xmlElementText(sys, tag); ok {
			r.addXML(tag, v)
		}
	}
	if v, ok := xmlAttr(sys, "Provider", "Name"); ok {
		r.addXML("Provider_Name", v)
	}
	if v, ok := xmlAttr(sys, "TimeCreated", "SystemTime"); ok {
		r.addXML("SystemTime", v)
	}
	data := x[sysEnd:]
	for {
		i := bytes.Index(data, []byte(`<Data Name="`))
		if i < 0 {
			return nil
		}
		data = data[i+len(`<Data Name="`):]
		q := bytes.IndexByte(data, '"')
		if q < 0 {
			return errors.New("unterminated Data Name attribute")
		}
		name := data[:q]
		data = data[q+1:]
		gt := bytes.IndexByte(data, '>')
		if gt < 0 {
			return fmt.Errorf("Data %q: unterminated element", name)
		}
		if gt > 0 && data[gt-1] == '/' { // <Data Name="x"/>
			data = data[gt+1:]
			continue
		}
		data = data[gt+1:]
		end := bytes.Index(data, []byte("</Data>"))
		if end < 0 {
			return fmt.Errorf("Data %q: no </Data>", name)
		}
		r.addXML(string(name), data[:end])
		data = data[end+len("</Data>"):]
	}
}

// addXML stores a field, decoding XML character references.
func (r *syslogXMLReader) addXML(name string, v []byte) {
	fs := &r.fields
	start := len(fs.arena)
	fs.arena = appendXMLText(fs.arena, v)
	fs.add(fs.intern([]byte(name)), start)
}

// xmlElementText returns the text of the first <tag>text</tag> in x.
func xmlElementText(x []byte, tag string) ([]byte, bool) {
	open := "<" + tag
	for off := 0; ; {
		i := bytes.Index(x[off:], []byte(open))
		if i < 0 {
			return nil, false
		}
		i += off + len(open)
		if i >= len(x) {
			return nil, false
		}
		if x[i] != '>' && x[i] != ' ' && x[i] != '/' {
			off = i // a longer tag name (EventID vs EventRecordID)
			continue
		}
		gt := bytes.IndexByte(x[i:], '>')
		if gt < 0 || x[i+gt-1] == '/' {
			return nil, false
		}
		body := x[i+gt+1:]
		end := bytes.Index(body, []byte("</"+tag+">"))
		if end < 0 {
			return nil, false
		}
		return body[:end], true
	}
}

// xmlAttr returns attribute attr of the first <tag …> in x.
func xmlAttr(x []byte, tag, attr string) ([]byte, bool) {
	i := bytes.Index(x, []byte("<"+tag+" "))
	if i < 0 {
		return nil, false
	}
	el := x[i:]
	if gt := bytes.IndexByte(el, '>'); gt >= 0 {
		el = el[:gt]
	}
	j := bytes.Index(el, []byte(" "+attr+`="`))
	if j < 0 {
		return nil, false
	}
	v := el[j+len(attr)+3:]
	q := bytes.IndexByte(v, '"')
	if q < 0 {
		return nil, false
	}
	return v[:q], true
}

// appendXMLText appends XML text with &amp; &lt; &gt; &quot; &apos; and
// numeric character references decoded; an unknown reference is kept.
func appendXMLText(dst, v []byte) []byte {
	for {
		i := bytes.IndexByte(v, '&')
		if i < 0 {
			return append(dst, v...)
		}
		dst = append(dst, v[:i]...)
		v = v[i:]
		semi := bytes.IndexByte(v, ';')
		if semi < 0 || semi > 10 {
			dst = append(dst, '&')
			v = v[1:]
			continue
		}
		ref := string(v[1:semi])
		switch ref {
		case "amp":
			dst = append(dst, '&')
		case "lt":
			dst = append(dst, '<')
		case "gt":
			dst = append(dst, '>')
		case "quot":
			dst = append(dst, '"')
		case "apos":
			dst = append(dst, '\'')
		default:
			n, ok := charRef(ref)
			if !ok {
				dst = append(dst, v[:semi+1]...)
				v = v[semi+1:]
				continue
			}
			dst = append(dst, string(rune(n))...)
		}
		v = v[semi+1:]
	}
}

// charRef reads "#65" or "#x41".
func charRef(ref string) (int64, bool) {
	if len(ref) < 2 || ref[0] != '#' {
		return 0, false
	}
	var n int64
	var err error
	if ref[1] == 'x' || ref[1] == 'X' {
		n, err = strconv.ParseInt(ref[2:], 16, 32)
	} else {
		n, err = strconv.ParseInt(ref[1:], 10, 32)
	}
	return n, err == nil && n >= 0 && n <= 0x10FFFF
}

func (r *syslogXMLReader) recordErr(reason string, err error) error {
	return &telemetry.RecordError{File: r.path, Line: r.lines.line, Reason: reason, Err: err}
}

// Close closes the file.
func (r *syslogXMLReader) Close() error { return r.c.Close() }
