package importers

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// auditHeader is the start of a raw audit record:
// [node=NAME ]type=TYPE msg=audit(SECONDS.MILLIS:SERIAL): FIELDS
type auditHeader struct {
	node, typ string
	time      time.Time
	serial    int64
	body      string // the key=value fields after "): "
}

// parseAuditHeader splits a raw audit line into its header and fields.
func parseAuditHeader(line string) (auditHeader, error) {
	var h auditHeader
	if rest, ok := strings.CutPrefix(line, "node="); ok {
		i := strings.IndexByte(rest, ' ')
		if i < 0 {
			return h, errors.New("node= without a record after it")
		}
		h.node, line = rest[:i], rest[i+1:]
	}
	rest, ok := strings.CutPrefix(line, "type=")
	if !ok {
		return h, errors.New(`no "type=" at the start`)
	}
	i := strings.IndexByte(rest, ' ')
	if i < 0 {
		return h, errors.New("no msg=audit(...) after the type")
	}
	h.typ, rest = rest[:i], rest[i+1:]
	rest, ok = strings.CutPrefix(rest, "msg=")
	if !ok {
		return h, errors.New(`no "msg=audit(" after the type`)
	}
	var err error
	h.time, h.serial, h.body, err = parseAuditMsg(rest)
	return h, err
}

// parseAuditMsg splits a record's message, "audit(SECONDS.MILLIS:SERIAL):
// FIELDS" (as a log line has it after "msg=", and as the kernel's audit
// netlink socket sends it), into its time, serial and fields.
func parseAuditMsg(rest string) (t time.Time, serial int64, body string, err error) {
	rest, ok := strings.CutPrefix(rest, "audit(")
	if !ok {
		return t, 0, "", errors.New(`no "msg=audit(" after the type`)
	}
	end := strings.IndexByte(rest, ')')
	if end < 0 {
		return t, 0, "", errors.New("unterminated msg=audit(")
	}
	stamp := rest[:end]
	colon := strings.IndexByte(stamp, ':')
	if colon < 0 {
		return t, 0, "", errors.New("audit stamp without :serial")
	}
	serial, err = strconv.ParseInt(stamp[colon+1:], 10, 64)
	if err != nil {
		return t, 0, "", errors.New("audit serial is not a number")
	}
	t, ok = parseEpoch(stamp[:colon])
	if !ok {
		return t, 0, "", errors.New("audit time is not seconds.millis")
	}
	body = strings.TrimPrefix(rest[end+1:], ":")
	body = strings.TrimLeft(body, " ")
	// The enriched log format appends interpreted fields after a 0x1d byte.
	if j := strings.IndexByte(body, 0x1d); j >= 0 {
		body = body[:j]
	}
	return t, serial, body, nil
}

// parseEpoch reads "1604994496.155" as a UTC time.
func parseEpoch(s string) (time.Time, bool) {
	secText, fracText, _ := strings.Cut(s, ".")
	secs, err := strconv.ParseInt(secText, 10, 64)
	if err != nil || secs < 0 || secs > 1<<40 {
		return time.Time{}, false
	}
	var nanos int64
	if fracText != "" {
		if len(fracText) > 9 {
			return time.Time{}, false
		}
		f, err := strconv.ParseInt(fracText, 10, 64)
		if err != nil || f < 0 {
			return time.Time{}, false
		}
		for n := len(fracText); n < 9; n++ {
			f *= 10
		}
		nanos = f
	}
	return time.Unix(secs, nanos).UTC(), true
}

// auditField is one key=value of an audit record; quoted tells a literal
// "string" from an unquoted value, which for string fields means hex.
type auditField struct {
	key, value string
	quoted     bool
}

// nextAuditField reads the next key=value from s and returns the rest.
func nextAuditField(s string) (f auditField, rest string, ok bool) {
	for {
		s = strings.TrimLeft(s, " ")
		if s == "" {
			return f, "", false
		}
		eq := strings.IndexByte(s, '=')
		sp := strings.IndexByte(s, ' ')
		if eq >= 0 && (sp < 0 || eq < sp) {
			break
		}
		if sp < 0 { // a bare word at the end
			return f, "", false
		}
		s = s[sp:] // a bare word: skip it
	}
	eq := strings.IndexByte(s, '=')
	f.key, s = s[:eq], s[eq+1:]
	if len(s) > 0 && (s[0] == '"' || s[0] == '\'') {
		q := s[0]
		if end := strings.IndexByte(s[1:], q); end >= 0 {
			f.value, f.quoted = s[1:1+end], true
			return f, s[2+end:], true
		}
	}
	if sp := strings.IndexByte(s, ' '); sp >= 0 {
		f.value, rest = s[:sp], s[sp:]
	} else {
		f.value = s
	}
	return f, rest, true
}

// auditString decodes a string field: quoted is literal, unquoted is hex
// when it is valid hex, else kept as written ("(null)").
func auditString(f auditField) string {
	if f.quoted {
		return f.value
	}
	if b, ok := decodeHex(f.value); ok {
		return string(b)
	}
	return f.value
}

// decodeHex decodes an even-length hex string.
func decodeHex(s string) ([]byte, bool) {
	if len(s) == 0 || len(s)%2 != 0 {
		return nil, false
	}
	out := make([]byte, len(s)/2)
	for i := range out {
		hi, ok1 := hexVal(s[2*i])
		lo, ok2 := hexVal(s[2*i+1])
		if !ok1 || !ok2 {
			return nil, false
		}
		out[i] = hi<<4 | lo
	}
	return out, true
}
