package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

// Report summarises a run: the verdict, the ATT&CK techniques and tactics
// seen, the activity tree, the files dropped, the network destinations and
// the rules that fired.
type Report struct {
	RunID string `json:"run_id"`
	// Origin is OriginDetonate for a run made here, else the sandbox whose
	// report was imported (cape, cuckoo).
	Origin   string        `json:"origin"`
	Sample   string        `json:"sample"`
	SHA256   string        `json:"sha256"`
	SHA1     string        `json:"sha1"`
	MD5      string        `json:"md5"`
	Size     int64         `json:"size"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration_ns"`

	// Verdict is malicious (score ≥ 7), suspicious (≥ 4) or clean; Score
	// is 0–10 (see score); Severity follows the score.
	Verdict  string  `json:"verdict"`
	Score    float64 `json:"score"`
	Severity string  `json:"severity"`

	Tactics    []TacticSeen    `json:"tactics"`    // matrix order
	Techniques []TechniqueSeen `json:"techniques"` // by tactic, then ID
	// The tree, files, network destinations and rules: what every run's
	// stored report holds, whatever its origin.
	telemetry.SandboxReport
	Sandbox SandboxInfo `json:"sandbox"`
}

// SandboxInfo is how the run went.
type SandboxInfo struct {
	ExitCode    int      `json:"exit_code"`
	TimedOut    bool     `json:"timed_out"`
	Limits      []string `json:"limits"`
	NotLimited  []string `json:"not_limited,omitempty"`
	NotCaptured []string `json:"not_captured,omitempty"`
	// SinkDropped counts the sink's records past MaxSinkRecords.
	SinkDropped int    `json:"sink_dropped,omitempty"`
	Stderr      string `json:"stderr,omitempty"`
}

// TacticSeen is a tactic of the techniques seen.
type TacticSeen struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// TechniqueSeen is a technique seen, with how: by an alerting rule
// (medium and higher) or a tag of an informational or low rule.
type TechniqueSeen struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Tactics []string `json:"tactics"` // tactic names
	Alerted bool     `json:"alerted"`
}

// Node is a process of the run's tree.
type Node = telemetry.SandboxProcess

// FileActivity is a file the run wrote, changed or deleted.
type FileActivity = telemetry.SandboxFile

// Destination is a place the run tried to reach, with what the sink
// recorded of it.
type Destination = telemetry.SandboxDestination

// RuleFired is a rule with stored hits (medium and higher) in the run.
type RuleFired = telemetry.SandboxRule

var severityScore = map[string]float64{"informational": 1, "low": 3, "medium": 5, "high": 8, "critical": 10}

// BuildReport summarises the stored events and hits of run.
func BuildReport(ctx context.Context, st *eventstore.Store, kb *attack.KB, run telemetry.SandboxRun, res Result) (*Report, error) {
	rep := &Report{RunID: run.ID, Origin: OriginDetonate, Sample: run.Sample, SHA256: run.SHA256, SHA1: run.SHA1, MD5: run.MD5, Size: run.Size,
		Started: run.Started, Duration: run.Duration,
		Sandbox: SandboxInfo{ExitCode: res.ExitCode, TimedOut: res.TimedOut, Limits: res.Limits, NotLimited: res.NotLimited,
			SinkDropped: res.SinkDropped, Stderr: res.Stderr}}
	var evs []eventstore.StoredEvent
	if err := st.Scan(ctx, eventstore.Filter{RunIDs: []string{run.ID}}, func(e *eventstore.StoredEvent) bool {
		evs = append(evs, *e)
		return true
	}); err != nil {
		return nil, fmt.Errorf("report of run %s: %w", run.ID, err)
	}
	rep.Events = len(evs)
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].Time.Before(evs[j].Time) })
	eids := make([]int64, len(evs))
	byEID := map[int64]*eventstore.StoredEvent{}
	for i := range evs {
		eids[i] = evs[i].EID
		byEID[evs[i].EID] = &evs[i]
	}
	techs := map[string]*TechniqueSeen{}
	see := func(id string, alerted bool) {
		if id == "" {
			return
		}
		t := techs[id]
		if t == nil {
			t = techniqueSeen(kb, id)
			techs[id] = t
		}
		t.Alerted = t.Alerted || alerted
	}
	// Process badges: the techniques of each event, on its process.
	badges := map[string][]string{}
	var rules telemetry.SandboxRules
	var maxSev float64
	if err := st.ScanHitsByEIDs(ctx, eids, func(h *telemetry.Hit) bool {
		see(h.TechniqueID, true)
		if e := byEID[h.EID]; e != nil && h.TechniqueID != "" {
			badges[e.ProcessKey] = append(badges[e.ProcessKey], h.TechniqueID)
		}
		maxSev = max(maxSev, severityScore[h.Severity])
		rules.Add(h)
		return true
	}); err != nil {
		return nil, fmt.Errorf("report of run %s: %w", run.ID, err)
	}
	for i := range evs {
		for _, t := range strings.Split(evs[i].Techniques, ",") {
			if t != "" {
				see(t, false)
				badges[evs[i].ProcessKey] = append(badges[evs[i].ProcessKey], t)
				maxSev = max(maxSev, severityScore["low"])
			}
		}
	}
	rep.Tree = buildTree(evs, badges)
	rep.Files = fileActivity(evs, res.Files)
	rep.Network = destinations(evs, res.Sink)
	rep.Rules = rules.List()
	rep.Tactics, rep.Techniques = inMatrixOrder(kb, techs)
	rep.Score = score(maxSev, len(rep.Techniques))
	rep.Verdict, rep.Severity = verdict(rep.Score)
	return rep, nil
}

// StoredReport returns the report of a stored run: a detonation's as it
// was made; for an imported report, the part every run's report holds
// (telemetry.SandboxReport) under a header from the run's row (sample,
// verdict, score, techniques and tactics named by kb).
func StoredReport(run telemetry.SandboxRun, kb *attack.KB) (*Report, error) {
	rep := &Report{}
	if run.Origin == OriginDetonate {
		if err := json.Unmarshal(run.Report, rep); err != nil {
			return nil, fmt.Errorf("run %s: report: %w", run.ID, err)
		}
		if rep.Origin == "" {
			rep.Origin = OriginDetonate
		}
		return rep, nil
	}
	if len(run.Report) > 0 {
		if err := json.Unmarshal(run.Report, &rep.SandboxReport); err != nil {
			return nil, fmt.Errorf("run %s: report: %w", run.ID, err)
		}
	}
	rep.RunID, rep.Origin, rep.Sample, rep.SHA256, rep.SHA1, rep.MD5, rep.Size = run.ID, run.Origin, run.Sample, run.SHA256, run.SHA1, run.MD5, run.Size
	rep.Started, rep.Duration, rep.Verdict, rep.Score = run.Started, run.Duration, run.Verdict, run.Score
	_, rep.Severity = verdict(run.Score)
	tactics := map[string]*attack.Tactic{}
	if kb != nil {
		for _, ta := range kb.Tactics() {
			tactics[ta.ID] = ta
		}
	}
	for _, id := range run.Tactics {
		ts := TacticSeen{ID: id}
		if ta := tactics[id]; ta != nil {
			ts.Name = ta.Name
		}
		rep.Tactics = append(rep.Tactics, ts)
	}
	techs := map[string]*TechniqueSeen{}
	for _, id := range run.Techniques {
		t := techniqueSeen(kb, id)
		t.Alerted = true // the report or a rule named it
		techs[id] = t
	}
	if kb != nil {
		_, rep.Techniques = inMatrixOrder(kb, techs)
	} else {
		for _, id := range run.Techniques {
			rep.Techniques = append(rep.Techniques, *techs[id])
		}
	}
	return rep, nil
}

// techniqueSeen is technique id named, with its tactics, by kb (nil: the
// ID alone).
func techniqueSeen(kb *attack.KB, id string) *TechniqueSeen {
	t := &TechniqueSeen{ID: id}
	if kb == nil {
		return t
	}
	if tech, _, ok := kb.Resolve(id); ok {
		t.Name = tech.Name
		for _, sn := range tech.Tactics {
			if ta, ok := kb.Tactic(sn); ok {
				t.Tactics = append(t.Tactics, ta.Name)
			}
		}
	}
	return t
}

// score is the highest severity seen (critical 10, high 8, medium 5, low
// or a technique tag 3, informational 1) plus half a point for each
// further technique, at most 10.
func score(maxSev float64, techniques int) float64 {
	if maxSev == 0 {
		return 0
	}
	return min(10, maxSev+0.5*float64(max(techniques-1, 0)))
}

func verdict(score float64) (verdict, severity string) {
	switch {
	case score >= 7:
		verdict = "malicious"
	case score >= 4:
		verdict = "suspicious"
	default:
		verdict = "clean"
	}
	switch {
	case score >= 9:
		severity = "critical"
	case score >= 7:
		severity = "high"
	case score >= 4:
		severity = "medium"
	case score >= 1:
		severity = "low"
	default:
		severity = "informational"
	}
	return verdict, severity
}

// inMatrixOrder lists the tactics of the techniques in matrix order and
// the techniques by their first tactic, then ID.
func inMatrixOrder(kb *attack.KB, techs map[string]*TechniqueSeen) ([]TacticSeen, []TechniqueSeen) {
	order := map[string]int{}
	var tactics []TacticSeen
	used := map[string]bool{}
	for _, t := range techs {
		for _, n := range t.Tactics {
			used[n] = true
		}
	}
	for i, ta := range kb.Tactics() {
		order[ta.Name] = i
		if used[ta.Name] {
			tactics = append(tactics, TacticSeen{ID: ta.ID, Name: ta.Name})
		}
	}
	var out []TechniqueSeen
	for _, t := range techs {
		out = append(out, *t)
	}
	first := func(t TechniqueSeen) int {
		if len(t.Tactics) == 0 {
			return 1 << 30
		}
		best := 1 << 30
		for _, n := range t.Tactics {
			if o, ok := order[n]; ok && o < best {
				best = o
			}
		}
		return best
	}
	sort.Slice(out, func(i, j int) bool {
		if a, b := first(out[i]), first(out[j]); a != b {
			return a < b
		}
		return out[i].ID < out[j].ID
	})
	return tactics, out
}

func (r *Report) techniqueIDs() []string {
	var ids []string
	for _, t := range r.Techniques {
		ids = append(ids, t.ID)
	}
	sort.Strings(ids)
	return ids
}

func (r *Report) tacticIDs() []string {
	var ids []string
	for _, t := range r.Tactics {
		ids = append(ids, t.ID)
	}
	return ids
}

// buildTree makes the process tree of the run from its exec events: a
// process's parent is the latest earlier exec of its parent pid in the run
// (the sandbox's own bwrap is the root).
func buildTree(evs []eventstore.StoredEvent, badges map[string][]string) []*Node {
	var roots []*Node
	byPID := map[int64]*Node{}
	byKey := map[string]*Node{}
	for i := range evs {
		e := &evs[i]
		if e.Kind != telemetry.KindExec {
			continue
		}
		n := &Node{PID: e.PID, PPID: e.PPID, Time: e.Time, Path: e.Path, Cmdline: e.Cmdline, Key: e.ProcessKey}
		n.Techniques = slices.Compact(slices.Sorted(slices.Values(badges[e.ProcessKey])))
		if p := byPID[e.PPID]; p != nil {
			p.Children = append(p.Children, n)
		} else if p := byPID[e.PID]; p != nil && p.Key != e.ProcessKey {
			// An exec without fork (sh execs its last command): the
			// same pid's new image is its child in the tree.
			p.Children = append(p.Children, n)
		} else if len(roots) > 0 {
			// Every process of the run descends from the sandbox's
			// bwrap, whose forked (not executed) children have no exec
			// event of their own.
			roots[0].Children = append(roots[0].Children, n)
		} else {
			roots = append(roots, n)
		}
		byPID[e.PID] = n
		byKey[e.ProcessKey] = n
	}
	for i := range evs {
		e := &evs[i]
		if e.Kind == telemetry.KindExec || e.Kind == telemetry.KindExit {
			continue
		}
		if n := byKey[e.ProcessKey]; n != nil {
			if n.Activity == nil {
				n.Activity = map[string]int{}
			}
			n.Activity[e.Category]++
		}
	}
	return roots
}

func fileActivity(evs []eventstore.StoredEvent, left []File) []FileActivity {
	hashed := map[string]File{}
	for _, f := range left {
		hashed[f.Path] = f
	}
	var out []FileActivity
	at := map[string]int{}
	for i := range evs {
		e := &evs[i]
		var path, action string
		switch e.Category {
		case "file_event":
			path, action = e.Fields.Value("TargetFilename"), e.Fields.Value("Action")
		case "file_delete":
			path, action = e.Fields.Value("TargetFilename"), "delete"
		case "file_rename":
			path, action = e.Fields.Value("TargetFilename"), "rename from "+e.Fields.Value("SourceFilename")
		default:
			continue
		}
		// bwrap's own setup (the device nodes of its new root) is not the
		// sample's.
		if path == "" || path == SamplePath && action != "delete" || filepath.Base(e.Path) == "bwrap" {
			continue
		}
		j, ok := at[path]
		if !ok {
			j = len(out)
			at[path] = j
			out = append(out, FileActivity{Path: path, Process: e.Path})
		}
		if !slices.Contains(out[j].Actions, action) {
			out[j].Actions = append(out[j].Actions, action)
		}
	}
	for i := range out {
		if f, ok := hashed[out[i].Path]; ok {
			out[i].SHA256, out[i].Size = f.SHA256, f.Size
		}
	}
	// Files left that no event named (a write the rate limit held back).
	for _, f := range left {
		if _, ok := at[f.Path]; !ok {
			out = append(out, FileActivity{Path: f.Path, Actions: []string{"left"}, SHA256: f.SHA256, Size: f.Size})
		}
	}
	return out
}

func destinations(evs []eventstore.StoredEvent, sink []SinkRecord) []Destination {
	var out []Destination
	seen := map[string]int{}
	add := func(kind, dest, proc string) int {
		k := kind + " " + dest
		if i, ok := seen[k]; ok {
			return i
		}
		seen[k] = len(out)
		out = append(out, Destination{Kind: kind, Dest: dest, Process: proc})
		return len(out) - 1
	}
	for i := range evs {
		e := &evs[i]
		switch e.Category {
		case "network_connection":
			if e.Fields.Value("Action") != "connect" {
				continue
			}
			// ip:port, [ip6]:port: as the sink records it.
			add("connect", net.JoinHostPort(e.Fields.Value("DestinationIp"), e.Fields.Value("DestinationPort")), e.Path)
		case "dns_query":
			if q := e.Fields.Value("QueryName"); q != "" {
				add("dns", q, e.Path)
			}
		}
	}
	for _, r := range sink {
		kind, dest := "connect", r.Dest
		if r.Protocol == "dns" {
			kind, dest = "dns", r.Query
		}
		i := add(kind, dest, "")
		out[i].Sink = append(out[i].Sink, r)
	}
	return out
}
