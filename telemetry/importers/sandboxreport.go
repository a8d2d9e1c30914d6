package importers

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Bounds on what one sandbox report holds in memory (besides the string
// bound every JSON importer applies): entries past them are left out of
// the events and the summary, and the summary says how many.
const (
	maxSandboxProcesses = 20000
	maxSandboxList      = 20000 // signatures, ttps, dropped files, network entries of each kind
)

// sbFile is a file a report describes: the sample (target.file) or a
// dropped one.
type sbFile struct {
	Name       jval `json:"name"`
	Path       jval `json:"path"`
	FilePath   jval `json:"filepath"`    // Cuckoo: the path in the guest
	GuestPaths jval `json:"guest_paths"` // CAPE: the paths in the guest (a list or one)
	Size       jval `json:"size"`
	MD5        jval `json:"md5"`
	SHA1       jval `json:"sha1"`
	SHA256     jval `json:"sha256"`
	Type       jval `json:"type"`
	PIDs       jval `json:"pids"`
}

// guestPath is where the file was in the analysis machine.
func (f *sbFile) guestPath() string {
	if p := f.GuestPaths.list(); len(p) > 0 {
		return p[0]
	}
	if f.FilePath != "" {
		return string(f.FilePath)
	}
	return ""
}

// hashes is Sysmon's "SHA256=…,MD5=…,SHA1=…" form of the file's hashes.
func (f *sbFile) hashes() string {
	var parts []string
	for _, h := range []struct {
		k string
		v jval
	}{{"SHA256", f.SHA256}, {"MD5", f.MD5}, {"SHA1", f.SHA1}} {
		if h.v != "" {
			parts = append(parts, h.k+"="+strings.ToUpper(string(h.v)))
		}
	}
	return strings.Join(parts, ",")
}

// sbSignature is one signature of a report as written: CAPE's (name,
// description, severity, confidence, weight, categories, families) or
// Cuckoo's (… marks, and ttp in Cuckoo 2.0.7).
type sbSignature struct {
	Name        jval `json:"name"`
	Description jval `json:"description"`
	Severity    jval `json:"severity"`
	Confidence  jval `json:"confidence"`
	Weight      jval `json:"weight"`
	Categories  jval `json:"categories"`
	Families    jval `json:"families"`
	TTP         jval `json:"ttp"`
	TTPs        jval `json:"ttps"`
	Marks       jval `json:"marks"`
}

// sbTTP is an entry of a CAPE report's top-level ttps: {"ttp", "signature"}
// (older CAPE), {"signature", "ttps": [...]} (newer), or a bare ID.
type sbTTP struct {
	TTP       jval `json:"ttp"`
	TTPs      jval `json:"ttps"`
	Signature jval `json:"signature"`
}

type sbHost struct {
	IP       jval `json:"ip"`
	Hostname jval `json:"hostname"`
	Country  jval `json:"country_name"`
}

type sbDomain struct {
	Domain jval `json:"domain"`
	IP     jval `json:"ip"`
}

type sbDNS struct {
	Request jval `json:"request"`
	Type    jval `json:"type"`
	Answers jval `json:"answers"` // a list of {"type", "data"} (or of addresses)
}

// answers are the addresses and names of a DNS entry's answers.
func (q *sbDNS) answers() []string {
	var out []string
	for _, a := range q.Answers.list() {
		if strings.HasPrefix(a, "{") {
			var x struct {
				Data jval `json:"data"`
			}
			if json.Unmarshal([]byte(a), &x) == nil && x.Data != "" {
				out = append(out, string(x.Data))
			}
			continue
		}
		out = append(out, a)
	}
	return out
}

type sbHTTP struct {
	Host      jval `json:"host"`
	Port      jval `json:"port"`
	URI       jval `json:"uri"`
	Method    jval `json:"method"`
	Path      jval `json:"path"`
	UserAgent jval `json:"user-agent"`
}

type sbFlow struct {
	Src   jval `json:"src"`
	Sport jval `json:"sport"`
	Dst   jval `json:"dst"`
	Dport jval `json:"dport"`
	Time  jval `json:"time"`
}

// sbProcess is one process of the report, from behavior.processes (the
// monitored ones, with their calls) or only from behavior.processtree.
type sbProcess struct {
	index      int // in behavior.processes; -1 when only in the tree
	pid, ppid  int64
	name, path string
	cmdline    string
	user       string
	first      time.Time
	guid       string
	parent     *sbProcess
	children   []*sbProcess
}

// sandboxData is what the first pass keeps of a report: everything but the
// API calls.
type sandboxData struct {
	origin string // cape or cuckoo
	fileID string // the report file's SHA-256 prefix, for a run id when the report names no task

	taskID         string
	machine        string
	pkg            string
	started, ended time.Time
	duration       time.Duration
	score          float64
	hasScore       bool
	malstatus      string

	target    sbFile
	targetURL string

	procs      []*sbProcess // behavior.processes, in order
	treeOnly   []*sbProcess // processes of the tree not in behavior.processes
	signatures []sbSignature
	ttps       []sbTTP
	hosts      []sbHost
	domains    []sbDomain
	dns        []sbDNS
	http       []sbHTTP
	tcp, udp   []sbFlow
	dropped    []sbFile
	left       map[string]int // entries left out over the bounds, by section

	capeMarks int // keys only CAPE writes, seen
}

// leave counts an entry left out of section.
func (d *sandboxData) leave(section string) {
	if d.left == nil {
		d.left = map[string]int{}
	}
	d.left[section]++
}

// list decodes a list section element by element, keeping at most
// maxSandboxList of them.
func decodeList[T any](w *jsonWalk, d *sandboxData, section string, out *[]T) error {
	return w.array(func(int) error {
		if len(*out) >= maxSandboxList {
			d.leave(section)
			return w.skip()
		}
		var v T
		if err := w.decode(&v); err != nil {
			return err
		}
		*out = append(*out, v)
		return nil
	})
}

// readSandboxData is the first pass over a report: everything but the API
// calls, which the second pass streams. A malformed report is an error
// naming the file, the byte offset and the field.
func readSandboxData(r io.Reader) (*sandboxData, error) {
	h := sha256.New()
	w := newJSONWalk("", &cappedReader{r: io.TeeReader(r, h)})
	d := &sandboxData{}
	var info struct {
		ID       jval `json:"id"`
		Started  jval `json:"started"`
		Ended    jval `json:"ended"`
		Duration jval `json:"duration"`
		Score    jval `json:"score"`
		Package  jval `json:"package"`
		Machine  jval `json:"machine"`
	}
	var tree []sbTreeNode
	err := w.object(func(key string) error {
		switch key {
		case "info":
			return w.decode(&info)
		case "target":
			var t struct {
				Category jval   `json:"category"`
				File     sbFile `json:"file"`
				URL      jval   `json:"url"`
			}
			if err := w.decode(&t); err != nil {
				return err
			}
			d.target, d.targetURL = t.File, string(t.URL)
			return nil
		case "behavior":
			return w.object(func(key string) error {
				switch key {
				case "processes":
					return w.array(func(i int) error { return d.readProcessHeader(w, i) })
				case "processtree":
					return w.decode(&tree)
				}
				return w.skip()
			})
		case "signatures":
			return decodeList(w, d, "signatures", &d.signatures)
		case "ttps":
			return w.array(func(int) error {
				var v jval
				if err := w.decode(&v); err != nil {
					return err
				}
				if len(d.ttps) >= maxSandboxList {
					d.leave("ttps")
					return nil
				}
				var t sbTTP
				if strings.HasPrefix(string(v), "{") {
					if json.Unmarshal([]byte(v), &t) != nil {
						return w.errorf("want {\"ttp\": ID, \"signature\": NAME} or {\"signature\": NAME, \"ttps\": [...]}")
					}
				} else {
					t.TTP = v
				}
				d.ttps = append(d.ttps, t)
				return nil
			})
		case "network":
			return d.readNetwork(w)
		case "dropped":
			return decodeList(w, d, "dropped", &d.dropped)
		case "malscore":
			d.capeMarks++
			var v jval
			if err := w.decode(&v); err != nil {
				return err
			}
			if f, ok := v.float(); ok {
				d.score, d.hasScore = f, true
			}
			return nil
		case "malstatus":
			d.capeMarks++
			var v jval
			if err := w.decode(&v); err != nil {
				return err
			}
			d.malstatus = string(v)
			return nil
		case "CAPE", "malfamily", "malfamily_tag", "cape_yara":
			d.capeMarks++
		}
		return w.skip()
	})
	if err != nil {
		return nil, err
	}
	// Anything after the report's object is not part of it.
	if _, err := w.dec.Token(); err != io.EOF {
		return nil, w.errorf("data after the report's closing brace")
	}
	d.fileID = hex.EncodeToString(h.Sum(nil))[:16]
	d.taskID = strings.TrimSpace(string(info.ID))
	d.machine = machineName(info.Machine)
	d.pkg = string(info.Package)
	d.started, _ = reportTime(info.Started)
	d.ended, _ = reportTime(info.Ended)
	if s, ok := info.Duration.float(); ok && s >= 0 && s < 1e7 {
		d.duration = time.Duration(s * float64(time.Second))
	} else if !d.started.IsZero() && d.ended.After(d.started) {
		d.duration = d.ended.Sub(d.started)
	}
	if !d.hasScore {
		if f, ok := info.Score.float(); ok {
			d.score, d.hasScore = f, true
		}
	}
	d.origin = "cuckoo"
	if d.capeMarks > 0 {
		d.origin = "cape"
	}
	d.mergeTree(tree)
	d.link()
	return d, nil
}

// machineName reads info.machine: an object with name (or label), or a
// name.
func machineName(v jval) string {
	s := string(v)
	if !strings.HasPrefix(s, "{") {
		return s
	}
	var m struct {
		Name  jval `json:"name"`
		Label jval `json:"label"`
	}
	if json.Unmarshal([]byte(s), &m) != nil {
		return ""
	}
	if m.Name != "" {
		return string(m.Name)
	}
	return string(m.Label)
}

// readProcessHeader reads one process of behavior.processes, skipping its
// calls (the second pass reads them).
func (d *sandboxData) readProcessHeader(w *jsonWalk, i int) error {
	f := map[string]jval{}
	err := w.object(func(key string) error {
		switch key {
		case "calls":
			return w.array(func(int) error {
				ok, err := w.open('{')
				if err == nil && !ok {
					err = w.errorf("want an object (an API call)")
				}
				if err != nil {
					return err
				}
				return w.skipRest()
			})
		case "threads", "modules", "file_activities":
			return w.skip()
		case "process_id", "parent_id":
			d.capeMarks++
		}
		var v jval
		if err := w.decode(&v); err != nil {
			return err
		}
		f[key] = v
		return nil
	})
	if err != nil {
		return err
	}
	if len(d.procs) >= maxSandboxProcesses {
		d.leave("processes")
		return nil
	}
	p := newSBProcess(f)
	p.index = i
	d.procs = append(d.procs, p)
	return nil
}

// newSBProcess builds a process from its fields, CAPE's names or Cuckoo's.
func newSBProcess(f map[string]jval) *sbProcess {
	first := func(names ...string) jval {
		for _, n := range names {
			if v := f[n]; v != "" {
				return v
			}
		}
		return ""
	}
	p := &sbProcess{index: -1, pid: -1, ppid: -1}
	if n, ok := first("process_id", "pid").int(); ok {
		p.pid = n
	}
	if n, ok := first("parent_id", "ppid").int(); ok {
		p.ppid = n
	}
	p.name = string(first("process_name", "name"))
	p.path = string(first("module_path", "process_path"))
	p.cmdline = string(first("command_line"))
	p.first, _ = reportTime(first("first_seen"))
	if env := string(f["environ"]); strings.HasPrefix(env, "{") {
		var e map[string]jval
		if json.Unmarshal([]byte(env), &e) == nil {
			if p.cmdline == "" {
				p.cmdline = string(e["CommandLine"])
			}
			if u := string(e["UserName"]); u != "" {
				p.user = u
				if c := string(e["ComputerName"]); c != "" {
					p.user = c + `\` + u
				}
			}
		}
	}
	if p.name == "" && p.path != "" {
		p.name = baseName(p.path)
	}
	return p
}

// sbTreeNode is a node of behavior.processtree.
type sbTreeNode struct {
	Name        jval         `json:"name"`
	ProcessName jval         `json:"process_name"`
	PID         jval         `json:"pid"`
	ParentID    jval         `json:"parent_id"`
	PPID        jval         `json:"ppid"`
	ModulePath  jval         `json:"module_path"`
	CommandLine jval         `json:"command_line"`
	FirstSeen   jval         `json:"first_seen"`
	Environ     jval         `json:"environ"`
	Children    []sbTreeNode `json:"children"`
}

// mergeTree adds what the process tree knows: command lines the processes
// lack, and the processes it has that behavior.processes does not.
func (d *sandboxData) mergeTree(nodes []sbTreeNode) {
	byPID := map[int64]*sbProcess{}
	for _, p := range d.procs {
		byPID[p.pid] = p
	}
	var walk func(ns []sbTreeNode, parent int64, depth int)
	walk = func(ns []sbTreeNode, parent int64, depth int) {
		if depth > 200 {
			return
		}
		for i := range ns {
			n := &ns[i]
			f := map[string]jval{"pid": n.PID, "ppid": n.PPID, "parent_id": n.ParentID, "process_name": n.ProcessName,
				"name": n.Name, "module_path": n.ModulePath, "command_line": n.CommandLine, "first_seen": n.FirstSeen, "environ": n.Environ}
			t := newSBProcess(f)
			if t.ppid < 0 {
				t.ppid = parent
			}
			if p, ok := byPID[t.pid]; ok {
				if p.cmdline == "" {
					p.cmdline = t.cmdline
				}
				if p.path == "" {
					p.path = t.path
				}
			} else if t.pid >= 0 && len(d.procs)+len(d.treeOnly) < maxSandboxProcesses {
				byPID[t.pid] = t
				d.treeOnly = append(d.treeOnly, t)
			}
			walk(n.Children, t.pid, depth+1)
		}
	}
	walk(nodes, -1, 0)
}

// link sets each process's parent: the latest process of its parent pid
// seen before it.
func (d *sandboxData) link() {
	all := d.all()
	sort.SliceStable(all, func(i, j int) bool {
		a, b := all[i].first, all[j].first
		if a.IsZero() || b.IsZero() {
			return false
		}
		return a.Before(b)
	})
	last := map[int64]*sbProcess{}
	for _, p := range all {
		if par, ok := last[p.ppid]; ok && par != p {
			p.parent = par
			par.children = append(par.children, p)
		}
		last[p.pid] = p
	}
	// A parent seen after its child (no first_seen to order them): by pid.
	for _, p := range all {
		if p.parent == nil && p.ppid >= 0 {
			if par, ok := last[p.ppid]; ok && par != p && !isAncestor(p, par) {
				p.parent = par
				par.children = append(par.children, p)
			}
		}
	}
}

func isAncestor(a, of *sbProcess) bool {
	for p, n := of, 0; p != nil && n < 1000; p, n = p.parent, n+1 {
		if p == a {
			return true
		}
	}
	return false
}

// all is every process, monitored first.
func (d *sandboxData) all() []*sbProcess {
	out := make([]*sbProcess, 0, len(d.procs)+len(d.treeOnly))
	out = append(out, d.procs...)
	return append(out, d.treeOnly...)
}

func (d *sandboxData) readNetwork(w *jsonWalk) error {
	return w.object(func(key string) error {
		switch key {
		case "hosts":
			return w.array(func(int) error {
				var v jval
				if err := w.decode(&v); err != nil {
					return err
				}
				if len(d.hosts) >= maxSandboxList {
					d.leave("network.hosts")
					return nil
				}
				var h sbHost
				if strings.HasPrefix(string(v), "{") {
					if json.Unmarshal([]byte(v), &h) != nil {
						return w.errorf("want a host object or an address")
					}
				} else {
					h.IP = v
				}
				d.hosts = append(d.hosts, h)
				return nil
			})
		case "domains":
			return decodeList(w, d, "network.domains", &d.domains)
		case "dns":
			return decodeList(w, d, "network.dns", &d.dns)
		case "http":
			return decodeList(w, d, "network.http", &d.http)
		case "tcp":
			return decodeList(w, d, "network.tcp", &d.tcp)
		case "udp":
			return decodeList(w, d, "network.udp", &d.udp)
		}
		return w.skip()
	})
}

var techniqueID = regexp.MustCompile(`(?i)^T\d{4}(\.\d{3})?$`)

// techniqueIDs picks the ATT&CK technique IDs of a ttp value: a list of
// IDs, a list of objects with one, an object keyed by them (Cuckoo 2.0.7),
// or one ID. MBC behaviour IDs and anything else are left out.
func techniqueIDs(v jval) []string {
	s := strings.TrimSpace(string(v))
	var out []string
	add := func(id string) {
		id = strings.ToUpper(strings.TrimSpace(id))
		if techniqueID.MatchString(id) {
			out = append(out, id)
		}
	}
	switch {
	case s == "":
	case strings.HasPrefix(s, "{"):
		var m map[string]json.RawMessage
		if json.Unmarshal([]byte(s), &m) == nil {
			for k := range m {
				add(k)
			}
		}
	case strings.HasPrefix(s, "["):
		var l []jval
		if json.Unmarshal([]byte(s), &l) == nil {
			for _, e := range l {
				if strings.HasPrefix(string(e), "{") {
					var t sbTTP
					if json.Unmarshal([]byte(e), &t) == nil {
						add(string(t.TTP))
					}
					continue
				}
				add(string(e))
			}
		}
	default:
		add(s)
	}
	sort.Strings(out)
	return dedupSorted(out)
}

func dedupSorted(s []string) []string {
	if len(s) < 2 {
		return s
	}
	out := s[:1]
	for _, x := range s[1:] {
		if x != out[len(out)-1] {
			out = append(out, x)
		}
	}
	return out
}

// baseName is the last element of a Windows or POSIX path.
func baseName(p string) string {
	if i := strings.LastIndexAny(p, `\/`); i >= 0 {
		return p[i+1:]
	}
	return p
}
