package server

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/quarry-sec/quarry/detections/packs"
	"github.com/quarry-sec/quarry/fleet/osqwire"
	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/tables/activity"
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

func (r rowReader) text(k string, n int) string {
	return limitString(strings.TrimSpace(osqwire.Text(r[k])), n)
}

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
		DetectedAt: r.unix("detected_at"),
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
		Activity:   nodeActivity(osqwire.Text(r["activity"])),
		Reported:   at,
	}
	if n.IncidentID == "" || n.ProcessKey == "" {
		return store.IncidentNode{}, false
	}
	return n, true
}

// Bounds of a tree node's activity as stored.
const (
	maxActivityJSON  = 256 << 10 // longer reports are dropped, not parsed
	maxActivityKinds = 32
	maxActivityItems = 10 // per kind
)

// nodeActivity reads a process_tree activity column: JSON that does not
// parse or is too long gives "" (the node is kept without it); kinds,
// items and texts are bounded, and the result is re-encoded, so NUL bytes
// and invalid UTF-8 reach the store escaped.
func nodeActivity(raw string) string {
	if raw == "" || len(raw) > maxActivityJSON {
		return ""
	}
	p, err := activity.ParseProcessActivity(raw)
	if err != nil {
		return ""
	}
	out := activity.ProcessActivity{}
	for _, kind := range p.Kinds() {
		k := p[kind]
		if k == nil || len(out) == maxActivityKinds {
			continue
		}
		c := &activity.KindActivity{Count: max(k.Count, len(k.Items))}
		for i, it := range k.Items {
			if i == maxActivityItems {
				break
			}
			it.Summary = limitString(it.Summary, 1024)
			it.Severity = strings.ToLower(limitString(it.Severity, 32))
			if len(it.Techniques) > 16 {
				it.Techniques = it.Techniques[:16]
			}
			for j := range it.Techniques {
				it.Techniques[j] = limitString(it.Techniques[j], 64)
			}
			c.Items = append(c.Items, it)
		}
		out[limitString(kind, 64)] = c
	}
	return out.JSON()
}

// goneWindow is how recent, before its result log's time, a removed
// incident row's detected_at (last_seen for a host that does not report
// it) must be for the incident to be gone from the host. The incidents
// query keeps the incidents detected in the past 24 hours (i.detected_at
// >= now - 86400), so an older removed row is the incident ageing out of
// the window, which the fleet keeps; the hour's margin keeps an incident at
// the window's edge (the host's clock, the query's run time) from being
// taken for a gone one.
const goneWindow = 23 * time.Hour

// resultLogKey identifies one result log within a log request: osquery
// logs a scheduled query's run as one item (batched diffResults) or, in
// event format, as one item per row, every item of the run carrying the
// query's name, the epoch, the run's counter and its time. The items of a
// request sharing all four are one result log.
type resultLogKey struct {
	name                     string
	epoch, counter, unixTime int64
}

// incidentDiff is what one result log of the incidents query reported:
// the IDs of its added (or snapshot) rows, and its removed rows.
type incidentDiff struct {
	added   map[string]bool
	removed []store.Incident
}

// incidentLogs collects the incidents query's result logs of one log
// request, to find the incidents the host no longer has once every item
// is read (gone).
type incidentLogs struct {
	diffs map[resultLogKey]*incidentDiff
	order []resultLogKey
}

func (l *incidentLogs) diff(k resultLogKey) *incidentDiff {
	if d := l.diffs[k]; d != nil {
		return d
	}
	if l.diffs == nil {
		l.diffs = map[resultLogKey]*incidentDiff{}
	}
	d := &incidentDiff{added: map[string]bool{}}
	l.diffs[k] = d
	l.order = append(l.order, k)
	return d
}

// addIncidentRow adds what a row of the incident queries, of the result
// log k, reports to b; the incidents query's rows are also noted in logs
// for gone. A removed row says nothing by itself: the incident changed
// (its new state is an added row of the same log), left the query's
// window, or is gone from the host (see gone). Removed tree rows are left
// alone: a changed incident's nodes come again as added rows, and a gone
// incident's nodes are deleted with it.
func addIncidentRow(b *store.LogBatch, logs *incidentLogs, k resultLogKey, query, action string, row json.RawMessage,
	at time.Time) {
	switch query {
	case packs.QueryIncidents:
		in, ok := incident(row, at)
		if !ok {
			return
		}
		d := logs.diff(k)
		if action == "removed" {
			d.removed = append(d.removed, in)
			return
		}
		d.added[in.IncidentID] = true
		b.Incidents = append(b.Incidents, in)
	case packs.QueryIncidentTree:
		if action == "removed" {
			return
		}
		if n, ok := incidentNode(row, at); ok {
			b.IncidentNodes = append(b.IncidentNodes, n)
		}
	}
}

// gone adds to b the incidents the host no longer has: those with a
// removed row and no added row in the same result log (resultLogKey), last
// seen within goneWindow of the log's time — an incident merged into
// another on the host (the merged incident keeps the other's ID) or
// deleted. The store deletes them for this host only, with their hits and
// tree nodes, unless it holds a newer state (store.Store.AppendLogs).
//
// osquery may split one result log over several requests. When a changed
// incident's removed row comes in an earlier request than its added row,
// the first request deletes it and the later one stores it again, so it is
// missing from the fleet in between (and comes back under a new fleet ID);
// in the other order the store keeps the stored state, being newer than
// the removal (its last_seen later), except when the change left
// last_seen as it was: then the incident is missing until the host
// reports it again.
func (l *incidentLogs) gone(b *store.LogBatch) {
	for _, k := range l.order {
		d := l.diffs[k]
		for _, in := range d.removed {
			windowed := in.DetectedAt
			if windowed.IsZero() {
				windowed = in.LastSeen
			}
			if d.added[in.IncidentID] || windowed.IsZero() || !windowed.After(in.Reported.Add(-goneWindow)) {
				continue
			}
			b.GoneIncidents = append(b.GoneIncidents, store.GoneIncident{IncidentID: in.IncidentID,
				LastSeen: in.LastSeen, Reported: in.Reported})
		}
	}
}
