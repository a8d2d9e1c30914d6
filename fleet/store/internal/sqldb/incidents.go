package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/telemetry"
)

// hostIncident is an incident to store with its host.
type hostIncident struct {
	host string
	in   *store.Incident
}

// hostNode is an incident's tree node to store with its host.
type hostNode struct {
	host string
	n    *store.IncidentNode
}

// incidentColumns are the stored columns of an incident after id and
// host_id, in the order incidentArgs binds them (without received_at) and
// scanIncident reads them.
const incidentColumns = `incident_id, first_seen, last_seen, score, severity, tactics, techniques, hit_count,
  root_pid, root_path, summary, reported, received_at, detected_at`

// upsertIncidentSQL inserts an incident or, when its host stored it
// before, replaces it unless the stored report is newer; RETURNING gives
// the incident's id only when the row was written.
const upsertIncidentSQL = `INSERT INTO incidents (host_id, ` + incidentColumns + `)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (host_id, incident_id) DO UPDATE SET first_seen = excluded.first_seen, last_seen = excluded.last_seen,
  score = excluded.score, severity = excluded.severity, tactics = excluded.tactics, techniques = excluded.techniques,
  hit_count = excluded.hit_count, root_pid = excluded.root_pid, root_path = excluded.root_path,
  summary = excluded.summary, reported = excluded.reported, received_at = excluded.received_at,
  detected_at = excluded.detected_at
WHERE excluded.reported >= incidents.reported
RETURNING id`

// hitsPerStatement bounds the rows of one incident_hits insert.
const hitsPerStatement = 200

// upsertIncidents stores incidents: each written one replaces its hits.
func (db *DB) upsertIncidents(ctx context.Context, tx *sql.Tx, ins []hostIncident, received time.Time) error {
	if len(ins) == 0 {
		return nil
	}
	up, err := db.txStmt(ctx, tx, upsertIncidentSQL)
	if err != nil {
		return fmt.Errorf("incidents: %w", err)
	}
	defer up.Close()
	del, err := db.txStmt(ctx, tx, `DELETE FROM incident_hits WHERE incident_ref = ?`)
	if err != nil {
		return fmt.Errorf("incidents: %w", err)
	}
	defer del.Close()
	for _, hi := range ins {
		in := hi.in
		var id int64
		err := up.QueryRowContext(ctx, hi.host, in.IncidentID, ms(in.FirstSeen), ms(in.LastSeen), in.Score, in.Severity,
			strings.Join(in.Tactics, ","), strings.Join(in.Techniques, ","), in.HitCount, in.RootPID, in.RootPath,
			in.Summary, ms(in.Reported), ms(received), ms(firstNonZero(in.DetectedAt, in.Reported, received))).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			continue // an older report than the one stored
		}
		if err != nil {
			return fmt.Errorf("incident %s: %w", in.IncidentID, err)
		}
		if _, err := del.ExecContext(ctx, id); err != nil {
			return fmt.Errorf("incident %s: hits: %w", in.IncidentID, err)
		}
		hits := uniqueSorted(in.HitIDs)
		for start := 0; start < len(hits); start += hitsPerStatement {
			chunk := hits[start:min(start+hitsPerStatement, len(hits))]
			stmt, err := db.txStmt(ctx, tx, valuesSQL(`INSERT INTO incident_hits (incident_ref, hit_id)`, 2, len(chunk),
				`ON CONFLICT (incident_ref, hit_id) DO NOTHING`))
			if err != nil {
				return fmt.Errorf("incident %s: hits: %w", in.IncidentID, err)
			}
			args := make([]any, 0, 2*len(chunk))
			for _, h := range chunk {
				args = append(args, id, h)
			}
			_, err = stmt.ExecContext(ctx, args...)
			stmt.Close()
			if err != nil {
				return fmt.Errorf("incident %s: hits: %w", in.IncidentID, err)
			}
		}
	}
	return nil
}

// hostGone is an incident a host no longer has, to delete with its host.
type hostGone struct {
	host string
	g    *store.GoneIncident
}

// deleteGoneIncidentSQL deletes a host's incident unless the stored state
// is newer than the removal (last seen or reported later); RETURNING gives
// its id only when it was deleted.
const deleteGoneIncidentSQL = `DELETE FROM incidents
WHERE host_id = ? AND incident_id = ? AND last_seen <= ? AND reported <= ?
RETURNING id`

// deleteGoneNodesSQL deletes a host's tree nodes of an incident it no
// longer stores, unless reported after the removal.
const deleteGoneNodesSQL = `DELETE FROM incident_nodes
WHERE host_id = ? AND incident_id = ? AND reported <= ?
  AND NOT EXISTS (SELECT 1 FROM incidents i WHERE i.host_id = ? AND i.incident_id = ?)`

// deleteGoneIncidents deletes the incidents hosts no longer have, with
// their hits and tree nodes (see store.Store.AppendLogs). Detections stay.
func (db *DB) deleteGoneIncidents(ctx context.Context, tx *sql.Tx, gone []hostGone) error {
	if len(gone) == 0 {
		return nil
	}
	del, err := db.txStmt(ctx, tx, deleteGoneIncidentSQL)
	if err != nil {
		return fmt.Errorf("gone incidents: %w", err)
	}
	defer del.Close()
	hits, err := db.txStmt(ctx, tx, `DELETE FROM incident_hits WHERE incident_ref = ?`)
	if err != nil {
		return fmt.Errorf("gone incidents: %w", err)
	}
	defer hits.Close()
	nodes, err := db.txStmt(ctx, tx, deleteGoneNodesSQL)
	if err != nil {
		return fmt.Errorf("gone incidents: %w", err)
	}
	defer nodes.Close()
	for _, hg := range gone {
		g := hg.g
		var id int64
		err := del.QueryRowContext(ctx, hg.host, g.IncidentID, ms(g.LastSeen), ms(g.Reported)).Scan(&id)
		switch {
		case errors.Is(err, sql.ErrNoRows): // not stored, or stored newer
		case err != nil:
			return fmt.Errorf("gone incident %s: %w", g.IncidentID, err)
		default:
			if _, err := hits.ExecContext(ctx, id); err != nil {
				return fmt.Errorf("gone incident %s: hits: %w", g.IncidentID, err)
			}
		}
		if _, err := nodes.ExecContext(ctx, hg.host, g.IncidentID, ms(g.Reported), hg.host, g.IncidentID); err != nil {
			return fmt.Errorf("gone incident %s: nodes: %w", g.IncidentID, err)
		}
	}
	return nil
}

// uniqueSorted returns the non-empty values of ss, sorted, once each.
func uniqueSorted(ss []string) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	n := 0
	for i, s := range out {
		if i == 0 || s != out[n-1] {
			out[n] = s
			n++
		}
	}
	return out[:n]
}

// nodeColumns are the stored columns of a tree node, in the order
// nodeArgs binds them.
var nodeColumns = []string{"host_id", "incident_id", "process_key", "parent_key", "depth", "relation", "pid", "ppid",
	"path", "cmdline", "username", "start_time", "exit_time", "exited", "eid", "hit_count", "techniques", "tactics",
	"severity", "reported", "activity"}

func nodeArgs(host string, n *store.IncidentNode) []any {
	exited := 0
	if n.Exited {
		exited = 1
	}
	return []any{host, n.IncidentID, n.ProcessKey, n.ParentKey, n.Depth, n.Relation, n.PID, n.PPID, n.Path, n.Cmdline,
		n.Username, ms(n.Start), ms(n.Exit), exited, n.EID, n.HitCount, strings.Join(n.Techniques, ","),
		strings.Join(n.Tactics, ","), n.Severity, ms(n.Reported), n.Activity}
}

// nodeHead and nodeTail are the head and tail of a tree node upsert (see
// nodeUpsert), built once; nodeTypes its column types, as nodeArgs binds
// them.
var (
	nodeHead, nodeTail = nodeUpsert()
	nodeTypes          = mustTypes("incident node", nodeArgs("", &store.IncidentNode{}))
)

// nodeUpsert returns the head and tail of a tree node upsert (see insertSQL):
// a node stored before is replaced unless the stored report is newer. Its
// rows must not repeat a key.
func nodeUpsert() (head, tail string) {
	var set []string
	for _, c := range nodeColumns[3:] {
		set = append(set, c+" = excluded."+c)
	}
	return "INSERT INTO incident_nodes (" + strings.Join(nodeColumns, ", ") + ")",
		"ON CONFLICT (host_id, incident_id, process_key) DO UPDATE SET " + strings.Join(set, ", ") +
			"\nWHERE excluded.reported >= incident_nodes.reported"
}

// nodesPerStatement bounds the rows of one node upsert.
const nodesPerStatement = 50

// upsertNodes stores tree nodes, several to a statement.
func (db *DB) upsertNodes(ctx context.Context, tx *sql.Tx, ns []hostNode) error {
	type key struct{ host, incident, process string }
	return upsertBatched(ctx, db, tx, "incident nodes", ns, nodesPerStatement, nodeHead, nodeTypes, nodeTail,
		func(hn hostNode) key { return key{hn.host, hn.n.IncidentID, hn.n.ProcessKey} },
		func(hn hostNode) []any { return nodeArgs(hn.host, hn.n) })
}

// splitList splits a stored comma-separated list; empty gives none.
func splitList(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, ",")
}

type scanner interface{ Scan(...any) error }

// scanIncident reads i.id, i.host_id, the host's identifier and name, then
// incidentColumns.
func scanIncident(r scanner) (*store.Incident, error) {
	var in store.Incident
	var first, last, reported, received, detected int64
	var tactics, techniques string
	if err := r.Scan(&in.ID, &in.HostID, &in.HostIdentifier, &in.Hostname, &in.IncidentID, &first, &last, &in.Score,
		&in.Severity, &tactics, &techniques, &in.HitCount, &in.RootPID, &in.RootPath, &in.Summary, &reported,
		&received, &detected); err != nil {
		return nil, err
	}
	in.FirstSeen, in.LastSeen, in.Reported, in.ReceivedAt = fromMS(first), fromMS(last), fromMS(reported), fromMS(received)
	in.DetectedAt = fromMS(detected)
	in.Tactics, in.Techniques = splitList(tactics), splitList(techniques)
	return &in, nil
}

const incidentSelect = `SELECT i.id, i.host_id, COALESCE(h.host_identifier, ''), COALESCE(h.hostname, ''),
  i.incident_id, i.first_seen, i.last_seen, i.score, i.severity, i.tactics, i.techniques, i.hit_count,
  i.root_pid, i.root_path, i.summary, i.reported, i.received_at, i.detected_at
FROM incidents i LEFT JOIN hosts h ON h.id = i.host_id`

// Incidents implements store.Store.
func (db *DB) Incidents(ctx context.Context, f store.IncidentFilter) ([]store.Incident, int, error) {
	var w conds
	w.in("i.host_id", f.HostIDs)
	w.in("i.incident_id", f.IncidentIDs)
	sinceCol, untilCol := "i.last_seen", "i.first_seen"
	if f.By == store.TimeDetected {
		sinceCol, untilCol = "i.detected_at", "i.detected_at"
	}
	w.timeRange(sinceCol, untilCol, f.Since, f.Until)
	if f.MinScore > 0 {
		w.add("i.score >= ?", f.MinScore)
	}
	cond, args := w.sql()
	return listPage(ctx, db, "incidents", `incidents i`+cond, incidentSelect+cond+`
ORDER BY i.score DESC, i.last_seen DESC, i.id DESC`, args, f.Limit, f.Offset, func(rows *sql.Rows) (store.Incident, error) {
		in, err := scanIncident(rows)
		if err != nil {
			return store.Incident{}, err
		}
		return *in, nil
	})
}

// IncidentByID implements store.Store.
func (db *DB) IncidentByID(ctx context.Context, id int64) (*store.Incident, error) {
	in, err := scanIncident(db.r.QueryRowContext(ctx, db.q(incidentSelect+` WHERE i.id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("incident %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("incident %d: %w", id, err)
	}
	return in, nil
}

// IncidentHits implements store.Store.
func (db *DB) IncidentHits(ctx context.Context, id int64) ([]store.IncidentHit, error) {
	rows, err := db.r.QueryContext(ctx, db.q(`SELECT ih.hit_id, d.id, d.host_id, COALESCE(h.host_identifier, ''),
  COALESCE(h.hostname, ''), d.hit_id, d.technique_id, d.`+strings.Join(detectionFields, ", d.")+`
FROM incident_hits ih
JOIN incidents i ON i.id = ih.incident_ref
LEFT JOIN detections d ON d.host_id = i.host_id AND d.hit_id = ih.hit_id
LEFT JOIN hosts h ON h.id = i.host_id
WHERE ih.incident_ref = ?
ORDER BY ih.hit_id, d.time, d.technique_id`), id)
	if err != nil {
		return nil, fmt.Errorf("incident %d hits: %w", id, err)
	}
	defer rows.Close()
	out := []store.IncidentHit{}
	for rows.Next() {
		var hit string
		var did, t, recv, det, eid, pid sql.NullInt64
		var s [22]sql.NullString
		if err := rows.Scan(&hit, &did, &s[0], &s[1], &s[2], &s[3], &s[4], &t, &s[5], &s[6], &s[7], &s[8], &s[9],
			&s[10], &s[11], &s[12], &s[13], &s[14], &s[15], &eid, &pid, &s[16], &s[17], &s[18], &s[19], &s[20],
			&recv, &det); err != nil {
			return nil, fmt.Errorf("incident %d hits: %w", id, err)
		}
		if len(out) == 0 || out[len(out)-1].HitID != hit {
			out = append(out, store.IncidentHit{HitID: hit, Detections: []store.Detection{}})
		}
		if !did.Valid {
			continue
		}
		d := store.Detection{ID: did.Int64, HostID: s[0].String, HostIdentifier: s[1].String, Hostname: s[2].String,
			Query: s[5].String, ReceivedAt: fromMS(recv.Int64),
			Hit: telemetry.Hit{HitID: s[3].String, TechniqueID: s[4].String, Time: fromMS(t.Int64),
				RuleID: s[6].String, RuleTitle: s[7].String, RuleAuthor: s[8].String, RuleSource: s[9].String,
				TechniqueName: s[10].String, Tactic: s[11].String, Severity: s[12].String, Confidence: s[13].String,
				Description: s[14].String, Recommendations: s[15].String, EID: eid.Int64, PID: pid.Int64,
				Path: s[16].String, Cmdline: s[17].String, ParentPath: s[18].String, Username: s[19].String,
				Source: s[20].String, DetectedAt: fromMS(det.Int64)},
			Kind: telemetry.KindOf(s[9].String)}
		last := &out[len(out)-1]
		last.Detections = append(last.Detections, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("incident %d hits: %w", id, err)
	}
	return out, nil
}

// IncidentTree implements store.Store.
func (db *DB) IncidentTree(ctx context.Context, id int64) ([]store.IncidentNode, error) {
	rows, err := db.r.QueryContext(ctx, db.q(`SELECT n.`+strings.Join(nodeColumns[1:], ", n.")+`
FROM incident_nodes n JOIN incidents i ON i.host_id = n.host_id AND i.incident_id = n.incident_id
WHERE i.id = ?
ORDER BY n.depth, n.start_time, n.process_key`), id)
	if err != nil {
		return nil, fmt.Errorf("incident %d tree: %w", id, err)
	}
	defer rows.Close()
	out := []store.IncidentNode{}
	for rows.Next() {
		var n store.IncidentNode
		var start, exit, reported int64
		var exited int
		var techniques, tactics string
		if err := rows.Scan(&n.IncidentID, &n.ProcessKey, &n.ParentKey, &n.Depth, &n.Relation, &n.PID, &n.PPID,
			&n.Path, &n.Cmdline, &n.Username, &start, &exit, &exited, &n.EID, &n.HitCount, &techniques, &tactics,
			&n.Severity, &reported, &n.Activity); err != nil {
			return nil, fmt.Errorf("incident %d tree: %w", id, err)
		}
		n.Start, n.Exit, n.Reported = fromMS(start), fromMS(exit), fromMS(reported)
		n.Exited = exited != 0
		n.Techniques, n.Tactics = splitList(techniques), splitList(tactics)
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("incident %d tree: %w", id, err)
	}
	return out, nil
}
