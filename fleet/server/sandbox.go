package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/quarry-sec/quarry/fleet/osqwire"
	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/telemetry"
)

// Bounds of a sandbox run as stored: a row's JSON columns longer than
// maxRunPartJSON are dropped, not parsed; lists and texts are cut.
const (
	maxRunPartJSON = 1 << 20
	maxRunNodes    = 500
	maxRunFiles    = 200
	maxRunDests    = 200
	maxRunRules    = 100
	maxRunText     = 4096
	maxRunList     = 32 // actions, techniques of one file or rule
)

// sandboxRun reads a row of the detection pack's sandbox runs query
// (sandbox_runs' columns, with its tree, files, network and rules as JSON),
// reported at at. A JSON column that does not parse is left empty; the run
// is kept.
func sandboxRun(raw json.RawMessage, at time.Time) (store.SandboxRun, bool) {
	r, ok := readRow(raw)
	if !ok {
		return store.SandboxRun{}, false
	}
	run := store.SandboxRun{
		SandboxRun: telemetry.SandboxRun{
			ID:         r.text("run_id", 128),
			Origin:     strings.ToLower(r.text("origin", 32)),
			Host:       r.text("host_identifier", 1024),
			Sample:     r.text("sample", 1024),
			SHA256:     strings.ToLower(r.text("sha256", 64)),
			SHA1:       strings.ToLower(r.text("sha1", 40)),
			MD5:        strings.ToLower(r.text("md5", 32)),
			Size:       r.int("size"),
			Started:    r.unix("started"),
			Duration:   time.Duration(max(r.int("duration_ms"), 0)) * time.Millisecond,
			Verdict:    strings.ToLower(r.text("verdict", 32)),
			Techniques: upper(r.list("techniques", 1024)),
			Tactics:    r.list("tactics", 64),
		},
		Reported: at,
	}
	if run.ID == "" {
		return store.SandboxRun{}, false
	}
	run.Score, _ = strconv.ParseFloat(r.text("score", 64), 64)
	run.Score = min(max(run.Score, 0), 10)
	if run.Score != run.Score { // NaN
		run.Score = 0
	}
	run.Tree = runTree(osqwire.Text(r["tree"]), at)
	run.Files = runFiles(osqwire.Text(r["files"]))
	run.Network = runNetwork(osqwire.Text(r["network"]))
	run.Rules = runRules(osqwire.Text(r["rules"]))
	return run, true
}

func upper(l []string) []string {
	for i := range l {
		l[i] = strings.ToUpper(l[i])
	}
	return l
}

// runPart decodes a JSON column into v unless it is empty or too long.
func runPart(raw string, v any) bool {
	return raw != "" && len(raw) <= maxRunPartJSON && json.Unmarshal([]byte(raw), v) == nil
}

// runTree reads a run's tree column: process_tree rows, as an incident
// tree's (treeNode); nodes without a process key are dropped, and a
// process key seen twice keeps its first node.
func runTree(raw string, at time.Time) []store.IncidentNode {
	var rows []map[string]any
	if !runPart(raw, &rows) {
		return nil
	}
	var out []store.IncidentNode
	seen := map[string]bool{}
	for _, row := range rows {
		if len(out) == maxRunNodes {
			break
		}
		n := treeNode(rowReader(row), at)
		if n.ProcessKey == "" || seen[n.ProcessKey] {
			continue
		}
		seen[n.ProcessKey] = true
		out = append(out, n)
	}
	return out
}

func runFiles(raw string) []telemetry.SandboxFile {
	var in []telemetry.SandboxFile
	if !runPart(raw, &in) {
		return nil
	}
	out := make([]telemetry.SandboxFile, 0, min(len(in), maxRunFiles))
	for _, f := range in[:min(len(in), maxRunFiles)] {
		out = append(out, telemetry.SandboxFile{Path: limitString(f.Path, maxRunText), Actions: limitList(f.Actions),
			Process: limitString(f.Process, maxRunText), SHA256: strings.ToLower(limitString(f.SHA256, 64)), Size: max(f.Size, 0)})
	}
	return out
}

func runNetwork(raw string) []telemetry.SandboxDestination {
	var in []telemetry.SandboxDestination
	if !runPart(raw, &in) {
		return nil
	}
	out := make([]telemetry.SandboxDestination, 0, min(len(in), maxRunDests))
	for _, d := range in[:min(len(in), maxRunDests)] {
		out = append(out, telemetry.SandboxDestination{Kind: limitString(d.Kind, 32), Dest: limitString(d.Dest, maxRunText),
			Process: limitString(d.Process, maxRunText)})
	}
	return out
}

func runRules(raw string) []telemetry.SandboxRule {
	var in []telemetry.SandboxRule
	if !runPart(raw, &in) {
		return nil
	}
	out := make([]telemetry.SandboxRule, 0, min(len(in), maxRunRules))
	for _, r := range in[:min(len(in), maxRunRules)] {
		out = append(out, telemetry.SandboxRule{ID: limitString(r.ID, 256), Title: limitString(r.Title, 1024),
			Source: limitString(r.Source, 32), Author: limitString(r.Author, 1024), Licence: limitString(r.Licence, 256),
			Severity: strings.ToLower(limitString(r.Severity, 32)), Confidence: strings.ToLower(limitString(r.Confidence, 32)),
			Description: limitString(r.Description, maxRunText), Recommendations: limitString(r.Recommendations, maxRunText),
			Techniques: upper(limitList(r.Techniques)), Hits: max(r.Hits, 0)})
	}
	return out
}

// limitList bounds a list's length and its items' lengths.
func limitList(l []string) []string {
	out := make([]string, 0, min(len(l), maxRunList))
	for _, v := range l[:min(len(l), maxRunList)] {
		out = append(out, limitString(v, 256))
	}
	return out
}

// LoadSandboxRun returns a host's sandbox run with its tree; host is the
// fleet's host ID or the host identifier. A missing host or run is
// store.ErrNotFound.
func LoadSandboxRun(ctx context.Context, st store.Store, host, runID string) (*store.SandboxRun, error) {
	hosts, err := st.Hosts(ctx)
	if err != nil {
		return nil, err
	}
	ids, _ := store.MatchHosts(hosts, []string{host})
	for _, id := range ids {
		run, err := st.SandboxRun(ctx, id, runID)
		if err == nil {
			return run, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("sandbox run %q of host %q: %w", runID, host, store.ErrNotFound)
}

// sandboxFilter reads host (IDs or identifiers), hostname, verdict (one or
// more, comma-separated), technique, since, until, limit and offset.
func (s *Server) sandboxFilter(ctx context.Context, q url.Values) (store.SandboxRunFilter, error) {
	var f store.SandboxRunFilter
	var err error
	if f.Since, f.Until, err = s.timeRange(q); err != nil {
		return f, err
	}
	for _, v := range list(q, "verdict") {
		switch v = strings.ToLower(v); v {
		case "malicious", "suspicious", "clean":
			f.Verdicts = append(f.Verdicts, v)
		default:
			return f, errorf(http.StatusBadRequest, "bad verdict %q (malicious, suspicious or clean)", v)
		}
	}
	if t := strings.TrimSpace(q.Get("technique")); t != "" {
		if len(t) > 32 {
			return f, errorf(http.StatusBadRequest, "bad technique %q (an ATT&CK ID such as T1059)", limitString(t, 32))
		}
		f.Technique = t
		if tech, _, ok := s.cfg.KB.Resolve(t); ok {
			f.Technique = tech.ID
		}
	}
	if f.HostIDs, err = s.hostFilter(ctx, q); err != nil {
		return f, err
	}
	if f.Limit, f.Offset, err = pageParams(q); err != nil {
		return f, err
	}
	return f, nil
}

// handleSandboxRun answers GET /api/v1/sandbox/runs/{host}/{run}: one run
// with its tree, files, network destinations and rules.
func (s *Server) handleSandboxRun(w http.ResponseWriter, r *http.Request) {
	run, err := LoadSandboxRun(r.Context(), s.cfg.Store, r.PathValue("host"), r.PathValue("run"))
	if errors.Is(err, store.ErrNotFound) {
		s.fail(w, r, errorf(http.StatusNotFound, "no sandbox run %q on host %q", r.PathValue("run"), r.PathValue("host")), nil)
		return
	}
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	writeJSON(w, http.StatusOK, run)
}
