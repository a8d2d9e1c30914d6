package importers

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/Velocidex/ordereddict"
	"www.velocidex.com/golang/evtx"

	"github.com/quarry-sec/quarry/telemetry"
)

// maxChunkRecords is more records than a 64 KiB chunk can hold (each takes
// at least 24 bytes); a header claiming more is damaged.
const maxChunkRecords = evtx.EVTX_CHUNK_SIZE / evtx.EVTX_EVENT_RECORD_SIZE

// evtxReader reads a Windows EVTX file chunk by chunk through
// www.velocidex.com/golang/evtx.
type evtxReader struct {
	names   nameCache // field names to winEvent's indexes
	rs      io.ReadSeeker
	c       io.Closer
	buf     []byte // one chunk, for checking it
	path    string
	cfg     *config
	chunks  []*evtx.Chunk
	chunk   int // next chunk to parse
	records []*evtx.EventRecord
	rec     int // next record in records
	fields  fieldSet
	scratch []byte
	// nodesLeft is what flattening the current event may still visit
	// (maxEventNodes); below zero the event is too large and rejected.
	nodesLeft int
}

func newEVTXReader(f io.ReadSeeker, c io.Closer, path string, cfg *config) (*evtxReader, error) {
	chunks, err := getChunks(f)
	if err != nil {
		return nil, fmt.Errorf("EVTX header: %w: %w", ErrDamaged, err)
	}
	return &evtxReader{rs: f, c: c, path: path, cfg: cfg, chunks: chunks}, nil
}

// getChunks lists the chunks, turning a parser panic on a damaged file into
// an error.
func getChunks(f io.ReadSeeker) (chunks []*evtx.Chunk, err error) {
	defer func() {
		if p := recover(); p != nil {
			chunks, err = nil, fmt.Errorf("damaged file: %v", p)
		}
	}()
	return evtx.GetChunks(f)
}

// parseChunk parses one chunk's records, turning a parser panic on a damaged
// chunk into an error.
func parseChunk(c *evtx.Chunk) (recs []*evtx.EventRecord, err error) {
	defer func() {
		if p := recover(); p != nil {
			recs, err = nil, fmt.Errorf("damaged chunk: %v", p)
		}
	}()
	return c.Parse(0)
}

// Next returns the next event.
func (r *evtxReader) Next() (telemetry.Event, error) {
	for r.rec >= len(r.records) {
		if r.chunk >= len(r.chunks) {
			return telemetry.Event{}, io.EOF
		}
		c := r.chunks[r.chunk]
		r.chunk++
		if n := c.Header.LastEventRecNumber - c.Header.FirstEventRecNumber; c.Header.LastEventRecNumber < c.Header.FirstEventRecNumber || n > maxChunkRecords {
			r.records, r.rec = nil, 0
			return telemetry.Event{}, &telemetry.RecordError{File: r.path, Record: int64(c.Header.FirstEventRecID),
				Reason: fmt.Sprintf("chunk %d at offset %d: header claims records %d to %d", r.chunk, c.Offset,
					c.Header.FirstEventRecNumber, c.Header.LastEventRecNumber)}
		}
		if r.buf == nil {
			r.buf = make([]byte, evtx.EVTX_CHUNK_SIZE)
		}
		if err := checkChunk(r.rs, c, r.buf); err != nil {
			r.records, r.rec = nil, 0
			return telemetry.Event{}, &telemetry.RecordError{File: r.path, Record: int64(c.Header.FirstEventRecID),
				Reason: fmt.Sprintf("chunk %d at offset %d damaged, skipped", r.chunk, c.Offset), Err: err}
		}
		if err := checkRecords(r.buf, &c.Header); err != nil {
			r.records, r.rec = nil, 0
			return telemetry.Event{}, &telemetry.RecordError{File: r.path, Record: int64(c.Header.FirstEventRecID),
				Reason: fmt.Sprintf("chunk %d at offset %d unreadable, skipped", r.chunk, c.Offset), Err: err}
		}
		recs, err := parseChunk(c)
		r.records, r.rec = recs, 0
		if err != nil {
			return telemetry.Event{}, &telemetry.RecordError{File: r.path, Record: int64(c.Header.FirstEventRecID),
				Reason: fmt.Sprintf("chunk %d at offset %d unreadable", r.chunk, c.Offset), Err: err}
		}
	}
	rec := r.records[r.rec]
	r.records[r.rec] = nil
	r.rec++
	id := int64(rec.Header.RecordID)
	root, ok := rec.Event.(*ordereddict.Dict)
	var ev *ordereddict.Dict
	if ok {
		ev, ok = getDict(root, "Event")
	}
	if !ok {
		return telemetry.Event{}, r.recordError(id, "record holds no Event element", nil)
	}
	r.fields.reset()
	r.nodesLeft = maxEventNodes
	sysTime := r.flattenEVTX(ev, filetime(rec.Header.FileTime))
	if r.nodesLeft < 0 {
		return telemetry.Event{}, r.recordError(id, fmt.Sprintf("event of over %d elements and values", maxEventNodes), nil)
	}
	e, err := r.cfg.winEvent(r.fields.build(), sysTime, id, &r.names)
	if err != nil {
		return telemetry.Event{}, r.recordError(id, "unusable Windows event", err)
	}
	return e, nil
}

// recordError reports the record just read. A RecordError names a record
// only by a positive ID; a damaged header can hold 0 or an ID past
// math.MaxInt64, and then the reason says where the record is instead.
func (r *evtxReader) recordError(id int64, reason string, err error) *telemetry.RecordError {
	if id <= 0 {
		reason = fmt.Sprintf("chunk %d, record %d of the chunk (ID %d): %s", r.chunk, r.rec, uint64(id), reason)
	}
	return &telemetry.RecordError{File: r.path, Record: id, Reason: reason, Err: err}
}

// maxEventNodes bounds the elements and values flattening visits in one
// event. The parser shares subtrees (a BinXml template argument substituted
// twice is one dict referenced twice), so a record of a few hundred bytes
// can expand into 2^30 leaves that flattening would visit one by one. Real
// events have hundreds.
const maxEventNodes = 1 << 16

// fitsNodes reports whether the tree under v has at most *left nodes,
// counting a shared subtree each time it is reached and stopping as soon
// as the count runs out; it takes what it counted from *left.
func fitsNodes(v any, left *int) bool {
	if *left--; *left < 0 {
		return false
	}
	switch x := v.(type) {
	case *ordereddict.Dict:
		for _, k := range x.Keys() {
			if c, _ := x.Get(k); !fitsNodes(c, left) {
				return false
			}
		}
	case []any:
		for _, c := range x {
			if !fitsNodes(c, left) {
				return false
			}
		}
	}
	return true
}

// flattenEVTX stores an Event element's System fields (EventID, Channel,
// Computer, Provider_Name…), EventData and UserData fields, and returns
// System/TimeCreated/SystemTime. The parser gives SystemTime as float
// seconds, a microsecond or two off; when the record header's exact FILETIME
// is that close it is the same instant and replaces it.
func (r *evtxReader) flattenEVTX(ev *ordereddict.Dict, written time.Time) time.Time {
	sys, ok := getDict(ev, "System")
	if !ok {
		return time.Time{}
	}
	r.flattenDict(sys, "", 0)
	var created time.Time
	if tc, ok := getDict(sys, "TimeCreated"); ok {
		if v, ok := tc.Get("SystemTime"); ok {
			if secs, ok := v.(float64); ok {
				created = floatTime(secs)
			}
		}
	}
	if d := created.Sub(written); !written.IsZero() && d > -3*time.Microsecond && d < 3*time.Microsecond {
		created = written
	}
	if !created.IsZero() {
		for i := range r.fields.spans {
			if sp := &r.fields.spans[i]; sp.key == "TimeCreated_SystemTime" {
				start := len(r.fields.arena)
				r.fields.arena = created.AppendFormat(r.fields.arena, "2006-01-02T15:04:05.000000Z")
				sp.start, sp.end = start, len(r.fields.arena)
			}
		}
	}
	hexNames := hexFieldsFor(r.fields.lookup("Channel"))
	for _, name := range [...]string{"EventData", "UserData"} {
		if d, ok := getDict(ev, name); ok {
			r.flattenData(d, hexNames, 0)
		}
	}
	return created
}

// floatTime turns the parser's float epoch seconds into UTC, truncated to
// the microsecond; zero when out of range.
func floatTime(secs float64) time.Time {
	if !(secs > 0 && secs < 1e11) {
		return time.Time{}
	}
	whole, frac := math.Modf(secs)
	return time.Unix(int64(whole), int64(frac*1e9)).UTC().Truncate(time.Microsecond)
}

// filetime turns a Windows FILETIME (100 ns ticks since 1601) into UTC,
// truncated to the microsecond as evtx_dump and Sigma test data show it; zero for 0 or a
// value out of range.
func filetime(ft uint64) time.Time {
	const epochDiff = 116444736000000000 // 1601 to 1970 in ticks
	if ft <= epochDiff || ft > epochDiff+(1<<62)/100 {
		return time.Time{}
	}
	d := ft - epochDiff
	return time.Unix(int64(d/1e7), int64(d%1e7)*100).UTC().Truncate(time.Microsecond)
}

// flattenDict stores System's members as Provider_Name, EventID…
func (r *evtxReader) flattenDict(d *ordereddict.Dict, prefix string, depth int) {
	for _, k := range d.Keys() {
		if r.nodesLeft--; r.nodesLeft < 0 {
			return
		}
		v, _ := d.Get(k)
		name := k
		switch {
		case k == "Value":
			name = prefix
		case prefix != "":
			name = prefix + "_" + k
		}
		if sub, ok := v.(*ordereddict.Dict); ok {
			if depth < maxJSONDepth {
				r.flattenDict(sub, name, depth+1)
			}
			continue
		}
		if name == "Keywords" {
			r.addValue(name, v, true)
			continue
		}
		r.addValue(name, v, false)
	}
}

// flattenData stores EventData/UserData members under their leaf names.
func (r *evtxReader) flattenData(d *ordereddict.Dict, hexNames map[string]bool, depth int) {
	for _, k := range d.Keys() {
		if r.nodesLeft--; r.nodesLeft < 0 {
			return
		}
		v, _ := d.Get(k)
		if sub, ok := v.(*ordereddict.Dict); ok {
			if depth < maxJSONDepth {
				r.flattenData(sub, hexNames, depth+1)
			}
			continue
		}
		r.addValue(k, v, hexNames[k] || strings.HasSuffix(k, "LogonId"))
	}
}

// addValue stores one value as text the way Windows renders it: hex for
// the fields Windows shows in hex (the parser loses the HexInt type).
func (r *evtxReader) addValue(name string, v any, hex bool) {
	fs := &r.fields
	start := len(fs.arena)
	switch x := v.(type) {
	case nil:
		return
	case string:
		fs.arena = append(fs.arena, x...)
	case uint8, uint16, uint32, uint64:
		n := toUint64(x)
		if hex {
			fs.arena = append(fs.arena, "0x"...)
			fs.arena = strconv.AppendUint(fs.arena, n, 16)
		} else {
			fs.arena = strconv.AppendUint(fs.arena, n, 10)
		}
	case bool:
		fs.arena = strconv.AppendBool(fs.arena, x)
	case float64: // a FILETIME, as epoch seconds
		if t := floatTime(x); !t.IsZero() {
			fs.arena = t.AppendFormat(fs.arena, "2006-01-02T15:04:05.000000Z")
		} else {
			fs.arena = strconv.AppendFloat(fs.arena, x, 'f', -1, 64)
		}
	case []byte:
		fs.arena = appendHexUpper(fs.arena, x)
	case []string:
		fs.arena = append(fs.arena, strings.Join(x, " ")...)
	default:
		// arrays may hold dicts shared many times: printed only within
		// the event's node budget
		if !fitsNodes(x, &r.nodesLeft) {
			return
		}
		fs.arena = fmt.Append(fs.arena, x)
	}
	fs.add(fs.intern([]byte(name)), start)
}

func toUint64(v any) uint64 {
	switch x := v.(type) {
	case uint8:
		return uint64(x)
	case uint16:
		return uint64(x)
	case uint32:
		return uint64(x)
	case uint64:
		return x
	}
	return 0
}

func appendHexUpper(dst, b []byte) []byte {
	const digits = "0123456789ABCDEF"
	for _, c := range b {
		dst = append(dst, digits[c>>4], digits[c&15])
	}
	return dst
}

// securityHexFields are the Security log fields Windows renders in hex.
var securityHexFields = map[string]bool{
	"NewProcessId": true, "ProcessId": true, "Status": true, "SubStatus": true,
	"AccessMask": true, "HandleId": true, "TargetProcessId": true, "CallerProcessId": true,
}

// sysmonHexFields are the Sysmon fields rendered in hex (GrantedAccess
// 0x1fffff, as Sigma rules match it).
var sysmonHexFields = map[string]bool{"GrantedAccess": true}

func hexFieldsFor(channel string) map[string]bool {
	if channel == "Security" {
		return securityHexFields
	}
	return sysmonHexFields
}

func getDict(d *ordereddict.Dict, key string) (*ordereddict.Dict, bool) {
	v, ok := d.Get(key)
	if !ok {
		return nil, false
	}
	sub, ok := v.(*ordereddict.Dict)
	return sub, ok
}

// Close closes the file.
func (r *evtxReader) Close() error { return r.c.Close() }
