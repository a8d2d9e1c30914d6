package sandboxtables

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/tables/activity"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
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

// runParts are a run's tree, files, network destinations and rules as the
// table's JSON columns carry them (each bounded).
type runParts struct {
	Tree    []TreeNode
	Files   []telemetry.SandboxFile
	Network []telemetry.SandboxDestination
	Rules   []telemetry.SandboxRule
}

// parts decodes a run's stored report (its telemetry.SandboxReport part,
// whatever its origin); a report that does not parse gives no parts (the
// run's row is still served). withActivity reads each node's activity from
// the store by its process key.
func parts(ctx context.Context, st *eventstore.Store, run telemetry.SandboxRun, withActivity bool) (runParts, error) {
	var rep telemetry.SandboxReport
	var p runParts
	if len(run.Report) == 0 || json.Unmarshal(run.Report, &rep) != nil {
		return p, nil
	}
	p.Rules = rules(rep.Rules)
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
	for _, d := range rep.Network {
		if len(p.Network) == MaxDestinations {
			break
		}
		// The sink's records stay in the report (quarry detonate --show).
		d.Kind, d.Dest, d.Process, d.Sink = limit(d.Kind), limit(d.Dest), limit(d.Process), nil
		if len(d.Answers) > 32 {
			d.Answers = d.Answers[:32]
		}
		for i := range d.Answers {
			d.Answers[i] = limit(d.Answers[i])
		}
		p.Network = append(p.Network, d)
	}
	return p, nil
}

// flatten lists a report's tree depth first, parents before children,
// keyed by the store's process key as the report names it (detonations
// and imports both do), else by its place in the tree.
func flatten(roots []*telemetry.SandboxProcess, sev map[string]string) []TreeNode {
	var out []TreeNode
	var walk func(n *telemetry.SandboxProcess, parent string, depth int64)
	walk = func(n *telemetry.SandboxProcess, parent string, depth int64) {
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
			PPID: n.PPID, Path: limit(path), Cmdline: limit(n.Cmdline)}
		if !n.Time.IsZero() && n.Time.Unix() > 0 {
			t.Start = n.Time.Unix()
		}
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

// rules bounds a run's rules (a detonation's rules that fired, an
// import's signatures and Quarry's rules that matched its events).
func rules(in []telemetry.SandboxRule) []telemetry.SandboxRule {
	var out []telemetry.SandboxRule
	for _, r := range in {
		if len(out) == MaxRules {
			break
		}
		r.ID, r.Title, r.Source, r.Author = limit(r.ID), limit(r.Title), limit(r.Source), limit(r.Author)
		r.Licence, r.Severity, r.Confidence = limit(r.Licence), limit(r.Severity), limit(r.Confidence)
		r.Description, r.Recommendations = limit(r.Description), limit(r.Recommendations)
		if len(r.Techniques) > 32 {
			r.Techniques = r.Techniques[:32]
		}
		if len(r.Families) > 32 {
			r.Families = r.Families[:32]
		}
		out = append(out, r)
	}
	return out
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
