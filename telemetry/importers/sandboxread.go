package importers

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/quarry-sec/quarry/telemetry"
)

// FormatSandboxReport is a CAPE or Cuckoo sandbox report (report.json): its
// processes become process_creation events (with their tree), their API
// calls file, registry, network, DNS, injection and image-load events
// under Sysmon's field names, its network capture and dropped files more
// events; the run itself and the signatures that matched are read with
// SandboxReportOf once the events are read.
const FormatSandboxReport Format = "sandbox-report"

// sandboxKeys are top-level keys of CAPE and Cuckoo reports (with a word of
// their content), of which a report's first bytes show at least two.
var sandboxKeys = [][2]string{
	{`"info"`, `"machine"`}, {`"info"`, `"package"`}, {`"behavior"`, `"processes"`},
	{`"target"`, `"category"`}, {`"signatures"`, `"severity"`}, {`"network"`, `"hosts"`},
	{`"statistics"`, `"processing"`}, {`"dropped"`, `"sha256"`}, {`"debug"`, `"log"`},
}

// isSandboxReport reports whether a JSON text's first bytes look like a
// sandbox report.
func isSandboxReport(head []byte) bool {
	n := 0
	for _, k := range sandboxKeys {
		i := bytes.Index(head, []byte(k[0]))
		if i >= 0 && bytes.Contains(head[i:], []byte(k[1])) {
			n++
		}
	}
	return n >= 2
}

// sandboxReader reads a sandbox report in two passes: the first (at open)
// reads everything but the API calls; the second streams the calls of
// behavior.processes, one at a time.
type sandboxReader struct {
	path   string
	events int // events returned by Next
	c      io.Closer
	rs     io.ReadSeeker
	d      *sandboxData

	runID, host string
	root        *sbProcess
	byPID       map[int64]*sbProcess // the last process of each pid
	dropped     map[string]*sbFile   // by guest path, lower case
	dnsAnswers  map[string][]string  // by query name, lower case

	w        *jsonWalk
	state    int // of the second pass, see step
	procIdx  int
	cur      *sbProcess
	phase    int
	queue    []telemetry.Event
	seq      int64
	seen     map[string]bool // events made, for de-duplication
	handles  map[*sbProcess]*procHandles
	fileSeen map[string]bool // guest paths with a file event, lower case
	netSeen  map[string]bool // "ip:port" and host names contacted through the API
	dnsSeen  map[string]bool

	report *SandboxReport
	err    error
}

// procHandles is what a process's calls tell about its handles.
type procHandles struct {
	procs  map[string]int64  // process handle → pid
	access map[string]string // process handle → access asked for
	files  map[string]string // file handle → path
}

// maxSeen bounds the de-duplication sets; past it, events are no longer
// de-duplicated (none is lost).
const maxSeen = 1 << 18

func newSandboxReader(rs io.ReadSeeker, c io.Closer, path string, cfg *config) (*sandboxReader, error) {
	if _, err := rs.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	d, err := readSandboxData(bufio.NewReaderSize(rs, readBufferSize))
	if err != nil {
		return nil, err
	}
	if _, err := rs.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	r := &sandboxReader{path: path, c: c, rs: rs, d: d, byPID: map[int64]*sbProcess{}, dropped: map[string]*sbFile{},
		dnsAnswers: map[string][]string{}, seen: map[string]bool{}, handles: map[*sbProcess]*procHandles{},
		fileSeen: map[string]bool{}, netSeen: map[string]bool{}, dnsSeen: map[string]bool{}}
	r.runID = d.origin + "-" + d.taskID
	if d.taskID == "" {
		r.runID = d.origin + "-" + d.fileID
	}
	r.host = cfg.hostFor(d.machine)
	r.assignGUIDs()
	for i := range d.dropped {
		if p := d.dropped[i].guestPath(); p != "" {
			r.dropped[strings.ToLower(cleanPath(p))] = &d.dropped[i]
		}
	}
	for _, q := range d.dns {
		name := strings.ToLower(string(q.Request))
		r.dnsAnswers[name] = append(r.dnsAnswers[name], q.answers()...)
	}
	r.w = newJSONWalk("", &cappedReader{r: bufio.NewReaderSize(rs, readBufferSize)})
	return r, nil
}

// assignGUIDs gives every process its identity in the run
// ("<run id>/<pid>", "/2"… for a pid used again), and finds the sample's
// process: the first of the target file's name, else the first without a
// parent.
func (r *sandboxReader) assignGUIDs() {
	count := map[int64]int{}
	target := strings.ToLower(string(r.d.target.Name))
	for _, p := range r.d.all() {
		count[p.pid]++
		p.guid = fmt.Sprintf("%s/%d", r.runID, p.pid)
		if n := count[p.pid]; n > 1 {
			p.guid += "/" + strconv.Itoa(n)
		}
		if r.byPID[p.pid] == nil || p.index >= 0 {
			r.byPID[p.pid] = p
		}
	}
	for _, p := range r.d.all() {
		if target != "" && strings.ToLower(p.name) == target && (r.root == nil || before(p, r.root)) {
			r.root = p
		}
	}
	if r.root == nil {
		for _, p := range r.d.all() {
			if p.parent == nil && (r.root == nil || before(p, r.root)) {
				r.root = p
			}
		}
	}
}

func before(a, b *sbProcess) bool {
	return !a.first.IsZero() && (b.first.IsZero() || a.first.Before(b.first))
}

// Next returns the next event: the processes' starts first, then what
// their API calls did, then the network capture and dropped files no call
// accounted for. A report broken in the middle of its calls ends the
// stream with an error naming the file, offset and field.
func (r *sandboxReader) Next() (telemetry.Event, error) {
	for {
		if len(r.queue) > 0 {
			e := r.queue[0]
			r.queue = r.queue[1:]
			r.events++
			return e, nil
		}
		if err := r.err; err != nil {
			r.err = nil // once; then the stream ends
			return telemetry.Event{}, err
		}
		switch r.phase {
		case 0:
			for _, p := range r.d.all() {
				r.queue = append(r.queue, r.execEvent(p))
			}
			r.phase = 1
		case 1:
			more, err := r.step()
			if err != nil {
				r.err = fmt.Errorf("importers: %s: %w", r.path, err)
				r.phase = 3
				continue
			}
			if !more {
				r.phase = 2
			}
		case 2:
			r.trailing()
			r.report = r.buildReport()
			r.phase = 3
		default:
			return telemetry.Event{}, io.EOF
		}
	}
}

// The second pass's states.
const (
	stStart     = iota // before the report's opening brace
	stProcesses        // in behavior.processes, between processes
	stProcess          // in a process, between its keys
	stCalls            // in a process's calls
	stDone
)

// step advances the second pass until an event is queued or the processes
// end; more is false at their end.
func (r *sandboxReader) step() (more bool, err error) {
	w := r.w
	for len(r.queue) == 0 {
		switch r.state {
		case stStart:
			found, err := r.seekProcesses()
			if err != nil {
				return false, err
			}
			if !found {
				r.state = stDone
				continue
			}
			r.state = stProcesses
		case stProcesses:
			if !w.dec.More() {
				r.state = stDone
				continue
			}
			r.procIdx++
			w.path = append(w.path[:2], "["+strconv.Itoa(r.procIdx-1)+"]")
			if ok, err := w.open('{'); err != nil || !ok {
				if err == nil {
					err = w.errorf("want an object")
				}
				return false, err
			}
			r.cur = nil
			for _, p := range r.d.procs {
				if p.index == r.procIdx-1 {
					r.cur = p
					break
				}
			}
			r.state = stProcess
		case stProcess:
			if !w.dec.More() {
				if _, err := w.token(); err != nil {
					return false, err
				}
				r.state = stProcesses
				continue
			}
			t, err := w.token()
			if err != nil {
				return false, err
			}
			key, _ := t.(string)
			w.path = append(w.path[:3], key)
			if key != "calls" || r.cur == nil {
				if err := w.skip(); err != nil {
					return false, err
				}
				continue
			}
			if ok, err := w.open('['); err != nil {
				return false, err
			} else if !ok {
				continue // null or a scalar: no calls
			}
			r.state = stCalls
		case stCalls:
			if !w.dec.More() {
				if _, err := w.token(); err != nil {
					return false, err
				}
				w.path = w.path[:3]
				r.state = stProcess
				continue
			}
			var c apiCall
			if err := w.decode(&c); err != nil {
				return false, err
			}
			r.mapCall(r.cur, &c)
		case stDone:
			return false, nil
		}
	}
	return true, nil
}

// seekProcesses moves the second pass to the start of
// behavior.processes; false when the report has none.
func (r *sandboxReader) seekProcesses() (bool, error) {
	w := r.w
	if ok, err := w.open('{'); err != nil || !ok {
		return false, err
	}
	for w.dec.More() {
		t, err := w.token()
		if err != nil {
			return false, err
		}
		if key, _ := t.(string); key != "behavior" {
			if err := w.skip(); err != nil {
				return false, err
			}
			continue
		}
		if ok, err := w.open('{'); err != nil || !ok {
			return false, err
		}
		for w.dec.More() {
			t, err := w.token()
			if err != nil {
				return false, err
			}
			if key, _ := t.(string); key == "processes" {
				ok, err := w.open('[')
				w.path = []string{"behavior", "processes"}
				return ok, err
			}
			if err := w.skip(); err != nil {
				return false, err
			}
		}
		return false, nil
	}
	return false, nil
}

// Close closes the file.
func (r *sandboxReader) Close() error { return r.c.Close() }

// newEvent starts an event of p (nil: of no known process).
func (r *sandboxReader) newEvent(kind telemetry.Kind, p *sbProcess, category string, t time.Time) telemetry.Event {
	e := telemetry.NewEvent(kind, telemetry.SourceSandbox)
	e.Category = category
	e.Host = r.host
	e.RunID = r.runID
	e.Time = t
	if t.IsZero() {
		e.Time = r.d.started
	}
	r.seq++
	e.RecordID = r.seq
	if p != nil {
		e.PID = p.pid
		e.Path = p.path
		e.ProcessGUID = p.guid
		e.Username = p.user
		if e.Time.IsZero() {
			e.Time = p.first
		}
	}
	return e
}

// setActor names the acting process in Sysmon's fields.
func setActor(e *telemetry.Event, p *sbProcess) {
	if p == nil {
		return
	}
	e.Fields.Set("ProcessGuid", p.guid)
	e.Fields.Set("ProcessId", strconv.FormatInt(p.pid, 10))
	e.Fields.Set("Image", p.path)
	if p.user != "" {
		e.Fields.Set("User", p.user)
	}
}

// execEvent is a process's start, as Sysmon's EID 1 names its fields.
func (r *sandboxReader) execEvent(p *sbProcess) telemetry.Event {
	e := r.newEvent(telemetry.KindExec, p, "process_creation", p.first)
	e.PPID = p.ppid
	e.Cmdline = p.cmdline
	e.Fields.Set("ProcessGuid", p.guid)
	e.Fields.Set("ProcessId", strconv.FormatInt(p.pid, 10))
	e.Fields.Set("Image", p.path)
	e.Fields.Set("CommandLine", p.cmdline)
	if p.user != "" {
		e.Fields.Set("User", p.user)
	}
	if p.parent != nil {
		e.ParentGUID = p.parent.guid
		e.ParentPath = p.parent.path
		e.ParentCmdline = p.parent.cmdline
		e.Fields.Set("ParentProcessGuid", p.parent.guid)
	}
	if p.ppid >= 0 {
		e.Fields.Set("ParentProcessId", strconv.FormatInt(p.ppid, 10))
	}
	if e.ParentPath != "" {
		e.Fields.Set("ParentImage", e.ParentPath)
		e.Fields.Set("ParentCommandLine", e.ParentCmdline)
	}
	if p == r.root {
		if h := r.d.target.hashes(); h != "" {
			e.Hashes = h
			e.Fields.Set("Hashes", h)
		}
	}
	return e
}

// once reports whether key is new (and remembers it).
func (r *sandboxReader) once(key string) bool {
	if r.seen[key] {
		return false
	}
	if len(r.seen) < maxSeen {
		r.seen[key] = true
	}
	return true
}

// trailing queues what the network capture and the dropped files show that
// no API call did: connections, DNS queries and files, as the sample's
// process's (a capture does not say which process sent a packet).
func (r *sandboxReader) trailing() {
	p := r.root
	at := r.d.started
	if p != nil && p.first.After(at) {
		at = p.first
	}
	for _, q := range r.d.dns {
		name := string(q.Request)
		if name == "" || r.dnsSeen[strings.ToLower(name)] {
			continue
		}
		r.dnsEvent(p, at, name)
	}
	for _, set := range []struct {
		proto string
		flows []sbFlow
	}{{"tcp", r.d.tcp}, {"udp", r.d.udp}} {
		for _, f := range set.flows {
			dst, port := string(f.Dst), string(f.Dport)
			if dst == "" || r.netSeen[dst+":"+port] || noiseAddress(dst) || (set.proto == "udp" && (port == "53" || port == "5355" || port == "137" || port == "138" || port == "1900")) {
				continue
			}
			t := r.d.started
			if x, ok := f.Time.float(); ok {
				if x > 1e9 {
					t, _ = reportTime(f.Time)
				} else if x >= 0 && !t.IsZero() {
					t = t.Add(time.Duration(x * float64(time.Second)))
				}
			}
			e := r.connEvent(p, t, set.proto, dst, port, "")
			if e != nil {
				if s := string(f.Src); s != "" {
					e.Fields.Set("SourceIp", s)
				}
				if s := string(f.Sport); s != "" {
					e.Fields.Set("SourcePort", s)
				}
			}
		}
	}
	for i := range r.d.dropped {
		f := &r.d.dropped[i]
		path := cleanPath(f.guestPath())
		if path == "" || r.fileSeen[strings.ToLower(path)] {
			continue
		}
		by := p
		for _, s := range f.PIDs.list() {
			if n, err := strconv.ParseInt(s, 10, 64); err == nil && r.byPID[n] != nil {
				by = r.byPID[n]
				break
			}
		}
		r.fileEvent(by, at, path, "")
	}
}

// noiseAddress reports multicast and broadcast destinations, which a
// capture holds whatever the sample did.
func noiseAddress(ip string) bool {
	return strings.HasPrefix(ip, "224.") || strings.HasPrefix(ip, "239.") || strings.HasSuffix(ip, ".255") ||
		strings.HasPrefix(strings.ToLower(ip), "ff0")
}

// SandboxReportOf returns the run and signatures of a sandbox report being
// read by r (a Reader Open returned for FormatSandboxReport): nil until all
// its events are read, and for any other reader.
func SandboxReportOf(r telemetry.Reader) *SandboxReport {
	if b, ok := r.(*boundedReader); ok {
		r = b.r
	}
	if s, ok := r.(*sandboxReader); ok {
		return s.report
	}
	return nil
}

// callArgs are an API call's arguments: CAPE's list of {"name", "value"}
// or Cuckoo's object of name: value.
type callArgs []callArg

type callArg struct{ name, value string }

// UnmarshalJSON reads either form; any other value is no arguments.
func (a *callArgs) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	*a = nil
	switch {
	case len(b) == 0:
	case b[0] == '[':
		var l []jval
		if err := json.Unmarshal(b, &l); err != nil {
			return err
		}
		for _, x := range l {
			var nv struct {
				Name  jval `json:"name"`
				Value jval `json:"value"`
			}
			if strings.HasPrefix(string(x), "{") && json.Unmarshal([]byte(x), &nv) == nil {
				*a = append(*a, callArg{string(nv.Name), string(nv.Value)})
			}
		}
	case b[0] == '{':
		var m map[string]jval
		if err := json.Unmarshal(b, &m); err != nil {
			return err
		}
		for k, v := range m {
			*a = append(*a, callArg{k, string(v)})
		}
	}
	return nil
}

// get returns the first of the named arguments present (names compared
// without case), "" when none is.
func (a callArgs) get(names ...string) string {
	for _, n := range names {
		for _, x := range a {
			if strings.EqualFold(x.name, n) {
				return x.value
			}
		}
	}
	return ""
}

// apiCall is one API call of a process: CAPE's (timestamp, status, return,
// arguments as a list) or Cuckoo's (time, status, return_value, arguments
// as an object).
type apiCall struct {
	API       jval     `json:"api"`
	Category  jval     `json:"category"`
	Status    jval     `json:"status"`
	Timestamp jval     `json:"timestamp"`
	Time      jval     `json:"time"`
	Arguments callArgs `json:"arguments"`
	Flags     jval     `json:"flags"`
}

// ok reports whether the call succeeded (a call that does not say did).
func (c *apiCall) ok() bool {
	switch strings.ToLower(string(c.Status)) {
	case "false", "0":
		return false
	}
	return true
}

// when is the call's time, zero when it has none.
func (c *apiCall) when() time.Time {
	if t, ok := reportTime(c.Timestamp); ok {
		return t
	}
	t, _ := reportTime(c.Time)
	return t
}
