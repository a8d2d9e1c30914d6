package main

import (
	"math/bits"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/detections/pipeline"
	"github.com/quarry-sec/quarry/telemetry"
)

// Scan's JSON lines are written by hand, in the bytes encoding/json gives
// hitJSON (scan_json_test.go; SetEscapeHTML(false)): TestScanJSONLineAsEncodingJSON and
// FuzzScanJSONLine hold them equal. A line is three parts: the hit's own
// head (hit_id, host_identifier), the rule row's middle (rule_id through
// recommendations, the same for every hit of a rule and technique, so kept
// once per rule: see ruleRows) and the event's tail (eid through record).

// appendHitJSON appends r's JSON line, as hitJSON encodes it, with its
// newline.
func appendHitJSON(b []byte, r *telemetry.Hit, sourceFile string, record int64) []byte {
	b = appendHitHead(b, r.HitID, r.Host)
	b = appendRowMiddle(b, r)
	return appendHitTail(b, r, r.Time.Unix(), sourceFile, record)
}

func appendHitHead(b []byte, hitID, host string) []byte {
	b = append(b, `{"hit_id":`...)
	b = appendJSONString(b, hitID)
	b = append(b, `,"host_identifier":`...)
	return appendJSONString(b, host)
}

// appendRowMiddle appends the rule and technique fields of a row.
func appendRowMiddle(b []byte, r *telemetry.Hit) []byte {
	for _, f := range [...]struct{ name, v string }{
		{`,"rule_id":`, r.RuleID}, {`,"rule_title":`, r.RuleTitle}, {`,"rule_author":`, r.RuleAuthor},
		{`,"rule_source":`, r.RuleSource}, {`,"technique_id":`, r.TechniqueID},
		{`,"technique_name":`, r.TechniqueName}, {`,"tactic":`, r.Tactic}, {`,"severity":`, r.Severity},
		{`,"confidence":`, r.Confidence}, {`,"description":`, r.Description},
		{`,"recommendations":`, r.Recommendations},
	} {
		b = append(b, f.name...)
		b = appendJSONString(b, f.v)
	}
	return b
}

// appendHitTail appends the event's fields (the row's EID, PID, Path,
// Cmdline, ParentPath, Username and Source), the time and where the event
// came from, and closes the line.
func appendHitTail(b []byte, r *telemetry.Hit, unix int64, sourceFile string, record int64) []byte {
	b = append(b, `,"eid":`...)
	b = strconv.AppendInt(b, r.EID, 10)
	b = append(b, `,"pid":`...)
	b = strconv.AppendInt(b, r.PID, 10)
	for _, f := range [...]struct{ name, v string }{
		{`,"path":`, r.Path}, {`,"cmdline":`, r.Cmdline}, {`,"parent_path":`, r.ParentPath},
		{`,"username":`, r.Username}, {`,"source":`, r.Source},
	} {
		b = append(b, f.name...)
		b = appendJSONString(b, f.v)
	}
	b = append(b, `,"time":`...)
	b = strconv.AppendInt(b, unix, 10)
	b = append(b, `,"source_file":`...)
	b = appendJSONString(b, sourceFile)
	b = append(b, `,"record":`...)
	b = strconv.AppendInt(b, record, 10)
	return append(b, '}', '\n')
}

// jsonPlain marks the ASCII bytes a JSON string holds as they are: not a
// control character, quote or backslash.
var jsonPlain = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// plainPrefix returns the length of the longest prefix of s of plain ASCII
// bytes (jsonPlain: none a control character, quote, backslash or beyond
// ASCII), looking at eight bytes at a time.
func plainPrefix(s string) int {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	n := 0
	for ; len(s) >= 8; s = s[8:] {
		w := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
			uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
		q, x := w^('"'*lo), w^('\\'*lo)
		// The high bit of a byte of (v - k*lo) &^ v is set for the first
		// byte of v below k (and maybe for bytes after it, never before):
		// w's bytes below 0x20, q's and x's zero bytes; w's own high bits
		// are the bytes beyond ASCII.
		if m := (w | (w-0x20*lo)&^w | (q-lo)&^q | (x-lo)&^x) & hi; m != 0 {
			return n + bits.TrailingZeros64(m)/8
		}
		n += 8
	}
	for ; len(s) > 0 && s[0] < utf8.RuneSelf && jsonPlain[s[0]]; s = s[1:] {
		n++
	}
	return n
}

// appendJSONString appends s as a quoted JSON string the way encoding/json
// writes it without HTML escaping: quote and backslash escaped, \b \f \n
// \r \t by name and other control bytes as \u00XX, invalid UTF-8 as
// \ufffd, U+2028 and U+2029 escaped, everything else as it is.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	done := 0 // s[:done] is in b
	for i := 0; i < len(s); {
		// Paths and command lines are mostly runs of plain ASCII between
		// backslashes: each run is passed eight bytes at a time.
		if i += plainPrefix(s[i:]); i == len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if jsonPlain[c] {
				i++
				continue
			}
			b = append(b, s[done:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, `\b`...)
			case '\f':
				b = append(b, `\f`...)
			case '\n':
				b = append(b, `\n`...)
			case '\r':
				b = append(b, `\r`...)
			case '\t':
				b = append(b, `\t`...)
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
			}
			i++
			done = i
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b = append(b, s[done:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[done:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&15])
		default:
			i += n
			continue
		}
		i += n
		done = i
	}
	b = append(b, s[done:]...)
	return append(b, '"')
}

// ruleRows is what every hit of one rule shows, counts and writes, worked
// out at its first hit: its rows as pipeline.Records gives them and as the
// output shows them (scanner.shown), without the event's part.
type ruleRows struct {
	// stored are the rows' technique IDs as stored ("" for none), for
	// the layer.
	stored []string
	// shown are the rows' technique IDs as shown (telemetry.Untagged for
	// none).
	shown []string
	// tactics are the distinct tactics of the shown rows, in order.
	tactics []string
	// middles are the shown rows' JSON middles (appendRowMiddle).
	middles [][]byte
}

// rowsOf returns the rule rows of h, or nil when h's techniques and
// tactics are not its rule's own (a correlation's hit gathers those of the
// rules it saw): such hits take the general path.
func (s *scanner) rowsOf(h detections.Hit) *ruleRows {
	r := h.Rule
	if r.Correlation != nil || !sameSlice(h.Techniques, r.Techniques) || !sameSlice(h.Tactics, r.Tactics) {
		return nil
	}
	if rr, ok := s.rows[r]; ok {
		return rr
	}
	recs := pipeline.Records(detections.Hit{Rule: r, Techniques: r.Techniques, Tactics: r.Tactics, Event: &telemetry.Event{}}, 0, s.kb)
	rr := &ruleRows{}
	for _, rec := range recs {
		rr.stored = append(rr.stored, rec.TechniqueID)
	}
	seen := map[string]bool{}
	for _, rec := range s.shown(recs) {
		rr.shown = append(rr.shown, rec.TechniqueID)
		for _, t := range strings.Split(rec.Tactic, ",") {
			if t != "" && !seen[t] {
				seen[t] = true
				rr.tactics = append(rr.tactics, t)
			}
		}
		rr.middles = append(rr.middles, appendRowMiddle(nil, &rec))
	}
	if s.rows == nil {
		s.rows = map[*detections.Rule]*ruleRows{}
	}
	s.rows[r] = rr
	return rr
}

// sameSlice reports whether a and b are the same slice (same elements in
// the same memory).
func sameSlice[T any](a, b []T) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// reportRows counts and writes a hit of a rule through its rule rows: what
// report does, without building the hit's records.
func (s *scanner) reportRows(h detections.Hit, rr *ruleRows, eid, record int64) {
	s.hits++
	s.bySeverity[h.Rule.Severity.String()]++
	for _, id := range rr.stored {
		if id != "" && s.layer != nil {
			ls := s.layer[id]
			ls.Score++
			ls.Names = append(ls.Names, h.Rule.Title)
			s.layer[id] = ls
		}
	}
	for _, id := range rr.shown {
		if id == telemetry.Untagged {
			s.untagged++
		} else {
			s.byTechnique[id]++
		}
	}
	for _, t := range rr.tactics {
		s.byTactic[t]++
	}
	ev := h.Event
	at := h.Time
	if at.IsZero() {
		at = ev.Time
	}
	// The event's part of the hit id and of the line are worked out at
	// its first hit (a third of the events that hit hit more than once).
	c := &s.evPart
	if c.seq != s.events || c.ev != ev || c.eid != eid || c.record != record || !c.at.Equal(at) {
		*c = eventPart{seq: s.events, ev: ev, eid: eid, record: record, at: at, key: c.key[:0], tail: c.tail[:0]}
		c.key = pipeline.AppendEventKey(c.key, ev)
		row := telemetry.Hit{EID: eid, PID: ev.PID, Source: string(ev.Source)}
		row.Path, row.Cmdline, row.ParentPath, row.Username = pipeline.EventColumns(ev)
		c.tail = appendHitTail(c.tail, &row, at.Unix(), s.file, record)
	}
	s.id = pipeline.AppendHitIDOf(s.id[:0], h.Rule.ID, c.key)
	id := unsafe.String(unsafe.SliceData(s.id), len(s.id))
	b := s.line[:0]
	for _, mid := range rr.middles {
		b = appendHitHead(b, id, ev.Host)
		b = append(b, mid...)
		b = append(b, c.tail...)
	}
	s.line = b
	s.out.Write(b)
}

// eventPart is what the hits of one event share: its part of their ids
// (pipeline.AppendEventKey) and the end of their JSON lines
// (appendHitTail). seq is the scanner's count of events matched when it
// was worked out; it holds for hits with the same event, eid, record and
// time.
type eventPart struct {
	seq         int
	ev          *telemetry.Event
	eid, record int64
	at          time.Time
	key, tail   []byte
}
