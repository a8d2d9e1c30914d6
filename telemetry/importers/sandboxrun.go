package importers

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

// SandboxSignature is a signature a sandbox report says matched, as the
// report gives it: the caller turns it into a hit of the run.
type SandboxSignature struct {
	Name        string
	Description string
	// Severity is the sandbox's: 1 (low) to 3 (high), sometimes more.
	Severity int
	// Techniques are the ATT&CK technique IDs the report maps it to (the
	// signature's ttp/ttps, and the report's top-level ttps naming it).
	Techniques []string
	Families   []string
	// ProcessGUID is the process it is about: the one its marks name when
	// they name one, else the sample's (RootGUID).
	ProcessGUID string
}

// SandboxReport is what a sandbox report holds besides its events: the
// run and the signatures that matched. It is complete once the reader has
// returned io.EOF (see SandboxReportOf).
type SandboxReport struct {
	// Run is the run: ID "<origin>-<task id>", the sample, times, score and
	// verdict, the techniques of the report's signatures. Host is left for
	// the caller (the machine the report is imported on); Tactics are the
	// caller's to place in the matrix; Report is filled by Finish.
	Run telemetry.SandboxRun
	// Host is the host_identifier the run's events carry (the analysis
	// machine's name, or the one given).
	Host       string
	Signatures []SandboxSignature
	// RootGUID is the ProcessGUID of the sample's process, "" when the
	// report has no process.
	RootGUID string

	summary sandboxSummary
}

// sandboxSummary is the run's stored report (SandboxRun.Report): the
// tree, files, network and rules every run's report holds
// (telemetry.SandboxReport), with what only an imported report has.
type sandboxSummary struct {
	Origin   string       `json:"origin"`
	TaskID   string       `json:"task_id,omitempty"`
	Machine  string       `json:"machine,omitempty"`
	Package  string       `json:"package,omitempty"`
	Sample   *summaryFile `json:"sample,omitempty"`
	URL      string       `json:"url,omitempty"`
	Started  string       `json:"started,omitempty"`
	Duration float64      `json:"duration_seconds"`
	Score    float64      `json:"score"`
	// MalStatus is the report's own verdict word (CAPE's malstatus).
	MalStatus  string   `json:"malstatus,omitempty"`
	Verdict    string   `json:"verdict"`
	Techniques []string `json:"techniques"`
	Tactics    []string `json:"tactics"`
	telemetry.SandboxReport
	// LeftOut counts what the bounds of each list left out, by list.
	LeftOut map[string]int `json:"left_out,omitempty"`
	// Hits counts the hits of Quarry's rules on the run's events by
	// severity.
	Hits map[string]int `json:"hits_by_severity,omitempty"`
}

// summaryFile is the sample as the report describes it.
type summaryFile struct {
	Name   string `json:"name,omitempty"`
	Path   string `json:"path,omitempty"`
	Size   int64  `json:"size,omitempty"`
	Type   string `json:"type,omitempty"`
	MD5    string `json:"md5,omitempty"`
	SHA1   string `json:"sha1,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
}

// maxSummaryList bounds each list of the JSON summary.
const maxSummaryList = 500

// buildReport makes the run and signatures once the events are read.
func (r *sandboxReader) buildReport() *SandboxReport {
	d := r.d
	rep := &SandboxReport{Host: r.host}
	if r.root != nil {
		rep.RootGUID = r.root.guid
	}
	// The report's top-level ttps, by signature name.
	byName := map[string][]string{}
	var unnamed []string
	for _, t := range d.ttps {
		ids := techniqueIDs(t.TTP)
		ids = append(ids, techniqueIDs(t.TTPs)...)
		if n := string(t.Signature); n != "" {
			byName[n] = append(byName[n], ids...)
		} else {
			unnamed = append(unnamed, ids...)
		}
	}
	var techniques []string
	for _, s := range d.signatures {
		sev, _ := s.Severity.int()
		sig := SandboxSignature{Name: string(s.Name), Description: string(s.Description), Severity: int(sev),
			Families: s.Families.list(), ProcessGUID: rep.RootGUID}
		ids := append(techniqueIDs(s.TTP), techniqueIDs(s.TTPs)...)
		ids = append(ids, byName[sig.Name]...)
		sort.Strings(ids)
		sig.Techniques = dedupSorted(ids)
		if g := r.markedProcess(s.Marks); g != "" {
			sig.ProcessGUID = g
		}
		if sig.Name == "" {
			continue
		}
		techniques = append(techniques, sig.Techniques...)
		rep.Signatures = append(rep.Signatures, sig)
	}
	techniques = append(techniques, unnamed...)
	sort.Strings(techniques)
	techniques = dedupSorted(techniques)

	score, verdict := r.verdict()
	target := d.target
	size, _ := target.Size.int()
	rep.Run = telemetry.SandboxRun{
		ID: r.runID, Origin: d.origin,
		Sample: string(target.Name), SHA256: strings.ToLower(string(target.SHA256)), SHA1: strings.ToLower(string(target.SHA1)),
		MD5: strings.ToLower(string(target.MD5)), Size: size,
		Started: d.started, Duration: d.duration,
		Verdict: verdict, Score: score, Techniques: techniques,
	}
	if rep.Run.Sample == "" && d.targetURL != "" {
		rep.Run.Sample = d.targetURL
	}
	rep.summary = r.summary(rep, score, verdict)
	rep.summary.Events = r.events + len(r.queue) // those returned and those still to come
	return rep
}

// markedProcess is the GUID of the first process a Cuckoo signature's
// marks name (by pid), "" when they name none the report knows.
func (r *sandboxReader) markedProcess(marks jval) string {
	for _, m := range marks.list() {
		if !strings.HasPrefix(m, "{") {
			continue
		}
		var x struct {
			PID jval `json:"pid"`
		}
		if json.Unmarshal([]byte(m), &x) != nil {
			continue
		}
		if pid, ok := x.PID.int(); ok && r.byPID[pid] != nil {
			return r.byPID[pid].guid
		}
	}
	return ""
}

// verdict is the run's score (0–10) and verdict: CAPE's malscore and
// malstatus when the report has them (Cuckoo's info.score for the score),
// else a score from the signatures as CAPE computes it (weight ×
// (severity−1) × confidence, severity 1 counting half), capped at 10.
// A score of 7 or more is malicious, of 4 or more (or a signature of
// severity 3 or more) suspicious, anything else clean.
func (r *sandboxReader) verdict() (float64, string) {
	d := r.d
	score := d.score
	if !d.hasScore {
		for _, s := range d.signatures {
			sev, _ := s.Severity.int()
			w, ok := s.Weight.float()
			if !ok {
				w = 1
			}
			c, ok := s.Confidence.float()
			if !ok {
				c = 100
			}
			if sev <= 1 {
				score += w * 0.5 * c / 100
			} else {
				score += w * float64(sev-1) * c / 100
			}
		}
	}
	score = min(max(score, 0), 10)
	switch strings.ToLower(d.malstatus) {
	case "malicious":
		return score, "malicious"
	case "suspicious":
		return score, "suspicious"
	case "clean", "undetected", "benign":
		return score, "clean"
	}
	switch {
	case score >= 7:
		return score, "malicious"
	case score >= 4:
		return score, "suspicious"
	}
	for _, s := range d.signatures {
		if sev, _ := s.Severity.int(); sev >= 3 {
			return score, "suspicious"
		}
	}
	return score, "clean"
}

func (r *sandboxReader) summary(rep *SandboxReport, score float64, verdict string) sandboxSummary {
	d := r.d
	s := sandboxSummary{Origin: d.origin, TaskID: d.taskID, Machine: d.machine, Package: d.pkg, URL: d.targetURL,
		Duration: d.duration.Seconds(), Score: score, MalStatus: d.malstatus, Verdict: verdict, LeftOut: d.left}
	if !d.started.IsZero() {
		s.Started = d.started.Format(time.RFC3339Nano)
	}
	if d.target.Name != "" || d.target.SHA256 != "" {
		f := fileSummary(&d.target)
		s.Sample = &f
	}
	// The report's signatures are the run's rules.
	for _, g := range rep.Signatures {
		if len(s.Rules) == maxSummaryList {
			s.leave("summary.signatures")
			break
		}
		s.Rules = append(s.Rules, telemetry.SandboxRule{ID: g.Name, Title: g.Name, Source: d.origin,
			Severity: SeverityName(g.Severity), Description: g.Description, Techniques: g.Techniques, Families: g.Families, Hits: 1})
	}
	// The tree: roots are processes without a parent in the report.
	n := 0
	var node func(p *sbProcess, depth int) *telemetry.SandboxProcess
	node = func(p *sbProcess, depth int) *telemetry.SandboxProcess {
		n++
		sp := &telemetry.SandboxProcess{PID: p.pid, PPID: p.ppid, Time: p.first, Name: p.name, Path: p.path, Cmdline: p.cmdline}
		if p.guid != "" {
			sp.Key = eventstore.GUIDKey(r.host, p.guid)
		}
		for _, c := range p.children {
			if n >= 2000 || depth > 100 {
				s.leave("summary.tree")
				break
			}
			sp.Children = append(sp.Children, node(c, depth+1))
		}
		return sp
	}
	for _, p := range d.all() {
		if p.parent == nil && n < 2000 {
			s.Tree = append(s.Tree, node(p, 0))
		}
	}
	// The network, each kind bounded on its own.
	kinds := map[string]int{}
	add := func(kind, dest string, answers []string) {
		if dest == "" {
			return
		}
		if kinds[kind] >= maxSummaryList {
			s.leave("summary.network." + kind)
			return
		}
		kinds[kind]++
		s.Network = append(s.Network, telemetry.SandboxDestination{Kind: kind, Dest: dest, Answers: answers})
	}
	for _, h := range d.hosts {
		add("host", string(h.IP), nil)
	}
	for _, x := range d.domains {
		add("domain", string(x.Domain), nil)
	}
	for i := range d.dns {
		add("dns", string(d.dns[i].Request), d.dns[i].answers())
	}
	for _, h := range d.http {
		u := string(h.URI)
		if u == "" {
			u = string(h.Host) + string(h.Path)
		}
		add("http", strings.TrimSpace(string(h.Method)+" "+u), nil)
	}
	for _, f := range d.tcp {
		add("tcp", flowText(f), nil)
	}
	for _, f := range d.udp {
		add("udp", flowText(f), nil)
	}
	// The files the report says the sample dropped.
	for i := range d.dropped {
		if len(s.Files) >= maxSummaryList {
			s.leave("summary.dropped")
			break
		}
		f := fileSummary(&d.dropped[i])
		path := f.Path
		if path == "" {
			path = f.Name
		}
		s.Files = append(s.Files, telemetry.SandboxFile{Path: path, Actions: []string{"dropped"}, SHA256: f.SHA256, Size: f.Size})
	}
	return s
}

func (s *sandboxSummary) leave(section string) {
	if s.LeftOut == nil {
		s.LeftOut = map[string]int{}
	}
	s.LeftOut[section]++
}

func flowText(f sbFlow) string {
	if f.Dst == "" {
		return ""
	}
	return string(f.Src) + ":" + string(f.Sport) + " -> " + string(f.Dst) + ":" + string(f.Dport)
}

func fileSummary(f *sbFile) summaryFile {
	size, _ := f.Size.int()
	path := f.guestPath()
	if path == "" {
		path = string(f.Path)
	}
	return summaryFile{Name: string(f.Name), Path: path, Size: size, Type: string(f.Type),
		MD5: strings.ToLower(string(f.MD5)), SHA1: strings.ToLower(string(f.SHA1)), SHA256: strings.ToLower(string(f.SHA256))}
}

// Finish completes the run with what detection found on its events:
// techniques are all the run's (the report's, Run.Techniques, with those
// of the rules that matched its events, resolved by the caller, who has
// ATT&CK), tactics theirs (IDs) in matrix order, rules Quarry's rules that
// matched (telemetry.SandboxRules) and hits their count by severity; a run
// the report calls clean with a high or critical hit becomes suspicious.
// It fills Run.Report and returns the run.
func (rep *SandboxReport) Finish(techniques, tactics []string, rules []telemetry.SandboxRule, hits map[string]int) telemetry.SandboxRun {
	run := rep.Run
	all := append([]string(nil), techniques...)
	sort.Strings(all)
	run.Techniques = dedupSorted(all)
	run.Tactics = tactics
	if run.Verdict == "clean" && (hits["high"] > 0 || hits["critical"] > 0) {
		run.Verdict = "suspicious"
	}
	s := rep.summary
	s.Verdict = run.Verdict
	s.Techniques = run.Techniques
	s.Tactics = tactics
	if s.Techniques == nil {
		s.Techniques = []string{}
	}
	if s.Tactics == nil {
		s.Tactics = []string{}
	}
	// Quarry's rules that matched the run's events join its signatures
	// (their hits are in ioa_hits).
	s.Rules = append(s.Rules, rules...)
	if len(hits) > 0 {
		s.Hits = hits
	}
	run.Report, _ = json.Marshal(s)
	return run
}

// SeverityName maps a sandbox signature severity (1–3, or more) to a
// Sigma level: 1 low, 2 medium, 3 high, 4 and more critical; 0 or less
// informational.
func SeverityName(sev int) string {
	switch {
	case sev <= 0:
		return "informational"
	case sev == 1:
		return "low"
	case sev == 2:
		return "medium"
	case sev == 3:
		return "high"
	}
	return "critical"
}

// String describes the run in one line: id, verdict, score, techniques.
func (rep *SandboxReport) String() string {
	run := rep.Run
	return run.ID + ": " + run.Verdict + " (score " + strconv.FormatFloat(run.Score, 'f', 1, 64) + ")"
}
