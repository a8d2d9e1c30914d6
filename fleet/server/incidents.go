package server

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/quarry-sec/quarry/detections/packs"
	"github.com/quarry-sec/quarry/fleet/store"
)

// maxIncidentHits bounds the hit IDs stored with one incident report.
const maxIncidentHits = 10000

// rowReader reads a result row's columns as osquery sends them (strings)
// or as JSON values.
type rowReader map[string]any

func readRow(raw json.RawMessage) (rowReader, bool) {
	var cols map[string]any
	if err := json.Unmarshal(raw, &cols); err != nil {
		return nil, false
	}
	return cols, true
}

func (r rowReader) text(k string, n int) string { return limitString(strings.TrimSpace(str(r[k])), n) }

func (r rowReader) int(k string) int64 {
	s := r.text(k, 64)
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		return v
	}
	f, _ := strconv.ParseFloat(s, 64)
	return int64(f)
}

// unix reads UNIX seconds; 0 or less is the zero time.
func (r rowReader) unix(k string) time.Time {
	if v := r.int(k); v > 0 {
		return time.Unix(v, 0).UTC()
	}
	return time.Time{}
}

// list reads a comma-separated column.
func (r rowReader) list(k string, max int) []string {
	out := []string{}
	for _, v := range strings.Split(r.text(k, 1<<20), ",") {
		if v = strings.TrimSpace(v); v != "" && len(out) < max {
			out = append(out, limitString(v, 128))
		}
	}
	return out
}

// incident reads a row of the detection pack's incidents query (the
// incidents table's columns and hit_ids), reported at at.
func incident(raw json.RawMessage, at time.Time) (store.Incident, bool) {
	r, ok := readRow(raw)
	if !ok {
		return store.Incident{}, false
	}
	in := store.Incident{
		IncidentID: r.text("incident_id", 128),
		FirstSeen:  r.unix("first_seen"),
		LastSeen:   r.unix("last_seen"),
		Severity:   strings.ToLower(r.text("severity", 32)),
		Tactics:    r.list("tactics", 64),
		Techniques: r.list("techniques", 1024),
		HitCount:   r.int("hit_count"),
		RootPID:    r.int("root_pid"),
		RootPath:   r.text("root_path", 8192),
		Summary:    r.text("summary", 8192),
		HitIDs:     r.list("hit_ids", maxIncidentHits),
		Reported:   at,
	}
	in.Score, _ = strconv.ParseFloat(r.text("score", 64), 64)
	if in.IncidentID == "" {
		return store.Incident{}, false
	}
	return in, true
}

// incidentNode reads a row of the detection pack's incident tree query
// (process_tree columns), reported at at.
func incidentNode(raw json.RawMessage, at time.Time) (store.IncidentNode, bool) {
	r, ok := readRow(raw)
	if !ok {
		return store.IncidentNode{}, false
	}
	n := store.IncidentNode{
		IncidentID: r.text("incident_id", 128),
		ProcessKey: r.text("process_key", 1024),
		ParentKey:  r.text("parent_key", 1024),
		Depth:      int(r.int("depth")),
		Relation:   r.text("relation", 32),
		PID:        r.int("node_pid"),
		PPID:       r.int("node_ppid"),
		Path:       r.text("path", 8192),
		Cmdline:    r.text("cmdline", 8192),
		Username:   r.text("username", 1024),
		Start:      r.unix("start_time"),
		Exit:       r.unix("exit_time"),
		Exited:     r.int("exited") != 0,
		EID:        r.int("eid"),
		HitCount:   r.int("hit_count"),
		Techniques: r.list("techniques", 1024),
		Tactics:    r.list("tactics", 64),
		Severity:   strings.ToLower(r.text("severity", 32)),
		Reported:   at,
	}
	if n.IncidentID == "" || n.ProcessKey == "" {
		return store.IncidentNode{}, false
	}
	return n, true
}

// addIncidentRow adds what a row of the incident queries reports to b.
// Removed rows are left alone: an incident leaves the query's window, or
// changed (its new state is an added row), and the fleet keeps its last
// report.
func addIncidentRow(b *store.LogBatch, query, action string, row json.RawMessage, at time.Time) {
	if action == "removed" {
		return
	}
	switch query {
	case packs.QueryIncidents:
		if in, ok := incident(row, at); ok {
			b.Incidents = append(b.Incidents, in)
		}
	case packs.QueryIncidentTree:
		if n, ok := incidentNode(row, at); ok {
			b.IncidentNodes = append(b.IncidentNodes, n)
		}
	}
}
