package sandboxtables

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/tables/activity"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
	"github.com/quarry-sec/quarry/telemetry/importers"
)

// Bounds of what a run's row carries of its report: the fleet stores the
// row as it is, so a huge report must not make a huge row.
const (
	MaxTreeNodes    = 500
	MaxFiles        = 200
	MaxDestinations = 200
	MaxRules        = 100
	maxText         = 4096
)

// TreeNode is one process of a run's tree as the tree column holds it:
// process_tree's columns (tables/incidenttables), so that the fleet reads
// a run's tree as it reads an incident's.
type TreeNode struct {
	Depth      int64  `json:"depth"`
	Relation   string `json:"relation"` // self (a root) or descendant
	ProcessKey string `json:"process_key"`
	ParentKey  string `json:"parent_key"`
	PID        int64  `json:"node_pid"`
	PPID       int64  `json:"node_ppid"`
	Path       string `json:"path"`
	Cmdline    string `json:"cmdline"`
	Start      int64  `json:"start_time"` // UNIX seconds, 0 when unknown
	// HitCount is how many techniques are badged on the process.
	HitCount   int64  `json:"hit_count"`
	Techniques string `json:"techniques"` // comma-separated
	// Severity is the strongest severity of the run's rules naming one of
	// its techniques ("" when none does).
	Severity string `json:"severity"`
	// Activity is process_tree's activity JSON; "" for none.
	Activity string `json:"activity,omitempty"`
}

// reportNode is a tree node of either report shape: quarry detonate's
// (sandbox.Node) or an imported CAPE/Cuckoo summary's.
type reportNode struct {
	PID        int64          `json:"pid"`
	PPID       int64          `json:"ppid"`
	Time       string         `json:"time"`
	FirstSeen  string         `json:"first_seen"`
	Name       string         `json:"name"`
	Path       string         `json:"path"`
	Cmdline    string         `json:"cmdline"`
	Techniques []string       `json:"techniques"`
	Activity   map[string]int `json:"activity"`
	Key        string         `json:"process_key"`
	Children   []*reportNode  `json:"children"`
}

// report is what the columns read of a stored report, in either shape.
type report struct {
	Tree    []*reportNode           `json:"tree"`
	Files   []telemetry.SandboxFile `json:"files"`
	Network json.RawMessage         `json:"network"`
	Rules   json.RawMessage         `json:"rules"`
	Dropped []importedFile          `json:"dropped"`
	Sigs    []importedSignature     `json:"signatures"`
	Matched []string                `json:"rules_matched"`
	Origin  string                  `json:"origin"`
}

type importedFile struct {
	Name   string `json:"name"`
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

type importedSignature struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Severity    int      `json:"severity"`
	Techniques  []string `json:"techniques"`
}

type importedNetwork struct {
	Hosts   []string `json:"hosts"`
	Domains []string `json:"domains"`
	HTTP    []string `json:"http"`
	TCP     []string `json:"tcp"`
	UDP     []string `json:"udp"`
}

// runParts are a run's tree, files, network destinations and rules as the
// table's JSON columns carry them (each bounded).
type runParts struct {
	Tree    []TreeNode
	Files   []telemetry.SandboxFile
	Network []telemetry.SandboxDestination
	Rules   []telemetry.SandboxRule
}

// parts decodes a run's stored report; a report that does not parse gives
// no parts (the run's row is still served). withActivity reads each
// node's activity from the store by its process key.
func parts(ctx context.Context, st *eventstore.Store, run telemetry.SandboxRun, withActivity bool) (runParts, error) {
	var rep report
	var p runParts
	if len(run.Report) == 0 || json.Unmarshal(run.Report, &rep) != nil {
		return p, nil
	}
	p.Rules = rules(&rep)
	sev := map[string]string{}
	for _, r := range p.Rules {
		for _, t := range r.Techniques {
			if detections.ParseSeverity(r.Severity) > detections.ParseSeverity(sev[t]) {
				sev[t] = r.Severity
			}
		}
	}
	p.Tree = flatten(rep.Tree, sev)
	if withActivity {
		keys := make([]string, 0, len(p.Tree))
		for _, n := range p.Tree {
			keys = append(keys, n.ProcessKey)
		}
		act, err := activity.TreeActivity(ctx, st, keys, activity.PerKind)
		if err != nil {
			return p, fmt.Errorf("sandbox run %s: activity: %w", run.ID, err)
		}
		for i := range p.Tree {
			if j := act[p.Tree[i].ProcessKey].JSON(); j != "" {
				p.Tree[i].Activity = j
			}
		}
	}
	for _, f := range rep.Files {
		if len(p.Files) == MaxFiles {
			break
		}
		f.Path, f.Process, f.SHA256 = limit(f.Path), limit(f.Process), limit(f.SHA256)
		if len(f.Actions) > 8 {
			f.Actions = f.Actions[:8]
		}
		p.Files = append(p.Files, f)
	}
	for _, f := range rep.Dropped {
		if len(p.Files) == MaxFiles {
			break
		}
		path := f.Path
		if path == "" {
			path = f.Name
		}
		p.Files = append(p.Files, telemetry.SandboxFile{Path: limit(path), Actions: []string{"dropped"},
			SHA256: limit(f.SHA256), Size: f.Size})
	}
	p.Network = network(rep.Network)
	return p, nil
}

// flatten lists a report's tree depth first, parents before children,
// keyed by the store's process key as the report names it (detonations
// and imports both do), else by its place in the tree.
func flatten(roots []*reportNode, sev map[string]string) []TreeNode {
	var out []TreeNode
	var walk func(n *reportNode, parent string, depth int64)
	walk = func(n *reportNode, parent string, depth int64) {
		if n == nil || len(out) == MaxTreeNodes {
			return
		}
		key := n.Key
		if key == "" {
			key = "n:" + strconv.Itoa(len(out))
		}
		path := n.Path
		if path == "" {
			path = n.Name
		}
		t := TreeNode{Depth: depth, Relation: "descendant", ProcessKey: limit(key), ParentKey: limit(parent), PID: n.PID,
			PPID: n.PPID, Path: limit(path), Cmdline: limit(n.Cmdline), Start: unixOf(n.Time, n.FirstSeen)}
		if depth == 0 {
			t.Relation = "self"
		}
		techs := append([]string(nil), n.Techniques...)
		sort.Strings(techs)
		techs = dedup(techs)
		if len(techs) > 32 {
			techs = techs[:32]
		}
		for _, tech := range techs {
			if detections.ParseSeverity(sev[tech]) > detections.ParseSeverity(t.Severity) {
				t.Severity = sev[tech]
			}
		}
		if t.Severity == "" && len(techs) > 0 {
			t.Severity = "low" // a tag of an informational or low rule
		}
		t.Techniques, t.HitCount = strings.Join(techs, ","), int64(len(techs))
		if len(n.Activity) > 0 {
			// Counts only; replaced by the store's activity when asked.
			a := activity.ProcessActivity{}
			for kind, c := range n.Activity {
				if len(a) < 32 {
					a[limit(kind)] = &activity.KindActivity{Count: c}
				}
			}
			t.Activity = a.JSON()
		}
		out = append(out, t)
		for _, c := range n.Children {
			walk(c, t.ProcessKey, depth+1)
		}
	}
	for _, r := range roots {
		walk(r, "", 0)
	}
	return out
}

// rules reads a detonation's rules fired, or an import's signatures (with
// the titles of Quarry's rules that matched its events).
func rules(rep *report) []telemetry.SandboxRule {
	var out []telemetry.SandboxRule
	var fired []telemetry.SandboxRule
	if len(rep.Rules) > 0 && rep.Rules[0] == '[' {
		_ = json.Unmarshal(rep.Rules, &fired)
	}
	for _, r := range fired {
		r.ID, r.Title, r.Source, r.Author = limit(r.ID), limit(r.Title), limit(r.Source), limit(r.Author)
		r.Licence, r.Severity, r.Confidence = limit(r.Licence), limit(r.Severity), limit(r.Confidence)
		r.Description, r.Recommendations = limit(r.Description), limit(r.Recommendations)
		if len(r.Techniques) > 32 {
			r.Techniques = r.Techniques[:32]
		}
		out = append(out, r)
	}
	for _, s := range rep.Sigs {
		out = append(out, telemetry.SandboxRule{ID: limit(s.Name), Title: limit(s.Name), Source: limit(rep.Origin),
			Severity: importers.SeverityName(s.Severity), Description: limit(s.Description), Techniques: s.Techniques, Hits: 1})
	}
	for _, m := range rep.Matched {
		out = append(out, telemetry.SandboxRule{Title: limit(m), Source: "quarry", Hits: 1})
	}
	if len(out) > MaxRules {
		out = out[:MaxRules]
	}
	return out
}

// network reads a detonation's destinations (a list) or an import's
// network summary (an object of lists).
func network(raw json.RawMessage) []telemetry.SandboxDestination {
	var out []telemetry.SandboxDestination
	if len(raw) == 0 {
		return nil
	}
	if raw[0] == '[' {
		var ds []telemetry.SandboxDestination
		if json.Unmarshal(raw, &ds) != nil {
			return nil
		}
		for _, d := range ds {
			if len(out) == MaxDestinations {
				break
			}
			out = append(out, telemetry.SandboxDestination{Kind: limit(d.Kind), Dest: limit(d.Dest), Process: limit(d.Process)})
		}
		return out
	}
	var n importedNetwork
	if json.Unmarshal(raw, &n) != nil {
		return nil
	}
	for _, l := range []struct {
		kind  string
		dests []string
	}{{"host", n.Hosts}, {"domain", n.Domains}, {"http", n.HTTP}, {"tcp", n.TCP}, {"udp", n.UDP}} {
		for _, d := range l.dests {
			if len(out) == MaxDestinations {
				return out
			}
			out = append(out, telemetry.SandboxDestination{Kind: l.kind, Dest: limit(d)})
		}
	}
	return out
}

// unixOf reads the first of the times that parses (RFC 3339, or CAPE's
// "2006-01-02 15:04:05" in UTC) as UNIX seconds; 0 when none does.
func unixOf(vals ...string) int64 {
	for _, v := range vals {
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999", "2006-01-02 15:04:05"} {
			if t, err := time.Parse(layout, v); err == nil && !t.IsZero() && t.Unix() > 0 {
				return t.Unix()
			}
		}
	}
	return 0
}

func limit(s string) string {
	if len(s) <= maxText {
		return s
	}
	return strings.ToValidUTF8(s[:maxText], "")
}

func dedup(sorted []string) []string {
	out := sorted[:0]
	for i, s := range sorted {
		if s != "" && (i == 0 || s != sorted[i-1]) {
			out = append(out, s)
		}
	}
	return out
}

// jsonColumn encodes a part for its column; nil (SQL NULL) when empty.
func jsonColumn[T any](v []T) any {
	if len(v) == 0 {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return string(b)
}
