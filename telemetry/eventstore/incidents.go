package eventstore

import (
	"context"
	"database/sql"
	"fmt"
	"github.com/quarry-sec/quarry/telemetry"
	"strings"
	"time"
)

// incidentsSchema holds incidents (groups of hits along process ancestry,
// computed by detections/incidents) and which hits each one holds, plus the
// indexes process-tree walks need. Every statement is IF NOT EXISTS, so a
// store written before incidents existed gains them when it is opened, and
// an older Quarry opening a newer store ignores them.
const incidentsSchema = `
CREATE TABLE IF NOT EXISTS incidents (
	incident_id TEXT PRIMARY KEY,
	host TEXT NOT NULL,
	first_seen INTEGER NOT NULL,
	last_seen INTEGER NOT NULL,
	score REAL NOT NULL,
	severity TEXT NOT NULL,
	tactics TEXT NOT NULL,
	techniques TEXT NOT NULL,
	hit_count INTEGER NOT NULL,
	root_pid INTEGER NOT NULL,
	root_path TEXT NOT NULL,
	root_key TEXT NOT NULL,
	root_eid INTEGER NOT NULL DEFAULT 0,
	summary TEXT NOT NULL,
	updated_at INTEGER NOT NULL DEFAULT 0,
	detected_at INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS incidents_host ON incidents(host, first_seen, last_seen);
CREATE INDEX IF NOT EXISTS incidents_first ON incidents(first_seen);
CREATE TABLE IF NOT EXISTS incident_hits (
	incident_id TEXT NOT NULL,
	hit_id TEXT NOT NULL,
	PRIMARY KEY (incident_id, hit_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS incident_hits_hit ON incident_hits(hit_id);
CREATE INDEX IF NOT EXISTS events_ppid ON events(ppid, time);
CREATE INDEX IF NOT EXISTS events_guid ON events(process_guid) WHERE process_guid != '';
CREATE INDEX IF NOT EXISTS events_parent_guid ON events(parent_guid) WHERE parent_guid != '';
`

// IncidentRecord is one stored incident.
type IncidentRecord struct {
	IncidentID string
	Host       string
	FirstSeen  time.Time
	LastSeen   time.Time
	Score      float64
	Severity   string
	Tactics    string // tactic shortnames, comma-separated, in ATT&CK matrix order
	Techniques string // technique IDs, comma-separated, sorted
	HitCount   int64
	RootPID    int64
	RootPath   string
	// RootKey is the root process's identity (see detections/incidents).
	RootKey string
	// RootEID is the eid of the root process's start event, 0 when it is
	// not stored.
	RootEID int64
	Summary string
	// DetectedAt is when Quarry last detected a hit of the incident: the
	// latest stored_at of its hits (see telemetry.Hit.DetectedAt), set by
	// ReplaceIncidents. An incident that grows is detected again.
	DetectedAt time.Time
	// HitIDs are the incident's hits (written with it; filled on read only by
	// IncidentHits).
	HitIDs []string
}

const incidentColumns = `incident_id, host, first_seen, last_seen, score, severity, tactics, techniques,
	hit_count, root_pid, root_path, root_key, root_eid, summary`

// IncidentFilter selects stored incidents; zero fields do not filter. An
// incident matches the time bounds when it overlaps them: last_seen >= Since
// and first_seen < Until. DetectedSince and DetectedUntil (exclusive) bound
// its detected_at.
type IncidentFilter struct {
	Since, Until                 time.Time
	DetectedSince, DetectedUntil time.Time
	Hosts                        []string
	IncidentIDs                  []string
	// MinScore keeps incidents scoring at least this much when > 0.
	MinScore float64
	Limit    int
}

// ScanIncidents streams the incidents matching f, by first_seen then id, to
// fn until it returns false. The *IncidentRecord is reused between calls.
func (s *Store) ScanIncidents(ctx context.Context, f IncidentFilter, fn func(*IncidentRecord) bool) error {
	var w where
	if !f.Since.IsZero() {
		w.add("last_seen >= ?", f.Since.UnixNano())
	}
	if !f.Until.IsZero() {
		w.add("first_seen < ?", f.Until.UnixNano())
	}
	if !f.DetectedSince.IsZero() {
		w.add("detected_at >= ?", f.DetectedSince.UnixNano())
	}
	if !f.DetectedUntil.IsZero() {
		w.add("detected_at < ?", f.DetectedUntil.UnixNano())
	}
	in(&w, "host", f.Hosts)
	in(&w, "incident_id", f.IncidentIDs)
	if f.MinScore > 0 {
		w.add("score >= ?", f.MinScore)
	}
	cond, args := w.sql()
	q := "SELECT " + incidentColumns + ", detected_at FROM incidents" + cond + " ORDER BY first_seen, incident_id"
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("read incidents: %w", err)
	}
	defer rows.Close()
	var r IncidentRecord
	var first, last, detected int64
	for rows.Next() {
		if err := rows.Scan(&r.IncidentID, &r.Host, &first, &last, &r.Score, &r.Severity, &r.Tactics,
			&r.Techniques, &r.HitCount, &r.RootPID, &r.RootPath, &r.RootKey, &r.RootEID, &r.Summary, &detected); err != nil {
			return fmt.Errorf("read incidents: %w", err)
		}
		r.FirstSeen, r.LastSeen, r.DetectedAt = fromUnixNano(first), fromUnixNano(last), fromUnixNano(detected)
		if !fn(&r) {
			return nil
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read incidents: %w", err)
	}
	return nil
}

// IncidentHitPair is one incident_hits row.
type IncidentHitPair struct {
	IncidentID, HitID string
}

// ScanIncidentHits streams the (incident, hit) pairs of the given incidents
// (every incident when ids is empty), or of the given hits, ordered by
// incident then hit.
func (s *Store) ScanIncidentHits(ctx context.Context, incidentIDs, hitIDs []string, fn func(IncidentHitPair) bool) error {
	var w where
	in(&w, "incident_id", incidentIDs)
	in(&w, "hit_id", hitIDs)
	cond, args := w.sql()
	rows, err := s.read.QueryContext(ctx, "SELECT incident_id, hit_id FROM incident_hits"+cond+" ORDER BY incident_id, hit_id", args...)
	if err != nil {
		return fmt.Errorf("read incident hits: %w", err)
	}
	defer rows.Close()
	var p IncidentHitPair
	for rows.Next() {
		if err := rows.Scan(&p.IncidentID, &p.HitID); err != nil {
			return fmt.Errorf("read incident hits: %w", err)
		}
		if !fn(p) {
			return nil
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read incident hits: %w", err)
	}
	return nil
}

// IncidentSpan is where an incident lies in time on its host.
type IncidentSpan struct {
	IncidentID          string
	FirstSeen, LastSeen time.Time
}

// IncidentsOverlapping returns the incidents of host whose span overlaps
// [lo, hi] (both inclusive).
func (s *Store) IncidentsOverlapping(ctx context.Context, host string, lo, hi time.Time) ([]IncidentSpan, error) {
	rows, err := s.read.QueryContext(ctx,
		"SELECT incident_id, first_seen, last_seen FROM incidents WHERE host = ? AND first_seen <= ? AND last_seen >= ? ORDER BY incident_id",
		host, hi.UnixNano(), lo.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("read incidents of %s: %w", host, err)
	}
	defer rows.Close()
	var out []IncidentSpan
	for rows.Next() {
		var sp IncidentSpan
		var a, b int64
		if err := rows.Scan(&sp.IncidentID, &a, &b); err != nil {
			return nil, fmt.Errorf("read incidents of %s: %w", host, err)
		}
		sp.FirstSeen, sp.LastSeen = fromUnixNano(a), fromUnixNano(b)
		out = append(out, sp)
	}
	return out, rows.Err()
}

// ReplaceIncidents deletes the incidents named in remove (with their hit
// pairs) and stores add, in one transaction, so readers see either the old
// incidents or the new ones.
func (s *Store) ReplaceIncidents(ctx context.Context, remove []string, add []IncidentRecord) error {
	if len(remove) == 0 && len(add) == 0 {
		return nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store incidents: %w", err)
	}
	fail := func(err error) error {
		tx.Rollback()
		return fmt.Errorf("store incidents: %w", err)
	}
	for start := 0; start < len(remove); start += 500 {
		chunk := remove[start:min(start+500, len(remove))]
		ph := strings.TrimSuffix(strings.Repeat("?,", len(chunk)), ",")
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM incidents WHERE incident_id IN ("+ph+")", args...); err != nil {
			return fail(err)
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM incident_hits WHERE incident_id IN ("+ph+")", args...); err != nil {
			return fail(err)
		}
	}
	now := s.now().UnixNano()
	for i := range add {
		r := &add[i]
		_, err := tx.ExecContext(ctx, "INSERT OR REPLACE INTO incidents ("+incidentColumns+", updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
			r.IncidentID, r.Host, unixNano(r.FirstSeen), unixNano(r.LastSeen), r.Score, r.Severity, r.Tactics,
			r.Techniques, r.HitCount, r.RootPID, r.RootPath, r.RootKey, r.RootEID, r.Summary, now)
		if err != nil {
			return fail(fmt.Errorf("incident %s: %w", r.IncidentID, err))
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM incident_hits WHERE incident_id = ?", r.IncidentID); err != nil {
			return fail(err)
		}
		for _, h := range r.HitIDs {
			if _, err := tx.ExecContext(ctx, "INSERT OR IGNORE INTO incident_hits (incident_id, hit_id) VALUES (?, ?)", r.IncidentID, h); err != nil {
				return fail(fmt.Errorf("incident %s: %w", r.IncidentID, err))
			}
		}
		// Detected when its latest hit was; now for hits stored before
		// stored_at existed.
		if _, err := tx.ExecContext(ctx, `UPDATE incidents SET detected_at = COALESCE(NULLIF((SELECT max(h.stored_at)
			FROM incident_hits ih JOIN hits h ON h.hit_id = ih.hit_id WHERE ih.incident_id = ?), 0), ?) WHERE incident_id = ?`,
			r.IncidentID, now, r.IncidentID); err != nil {
			return fail(fmt.Errorf("incident %s: %w", r.IncidentID, err))
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit %d incidents: %w", len(add), err)
	}
	return nil
}

// HitHosts returns the distinct hosts that have hits.
func (s *Store) HitHosts(ctx context.Context) ([]string, error) {
	rows, err := s.read.QueryContext(ctx, "SELECT DISTINCT host FROM hits ORDER BY host")
	if err != nil {
		return nil, fmt.Errorf("read hit hosts: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			return nil, fmt.Errorf("read hit hosts: %w", err)
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// ScanHitsByEIDs streams the hit rows of the given events (by eid).
func (s *Store) ScanHitsByEIDs(ctx context.Context, eids []int64, fn func(*telemetry.Hit) bool) error {
	for start := 0; start < len(eids); start += 500 {
		chunk := eids[start:min(start+500, len(eids))]
		args := make([]any, len(chunk))
		for i, e := range chunk {
			args[i] = e
		}
		rows, err := s.read.QueryContext(ctx, "SELECT "+hitColumns+" FROM hits WHERE eid IN ("+
			strings.TrimSuffix(strings.Repeat("?,", len(chunk)), ",")+") ORDER BY time, hit_id", args...)
		if err != nil {
			return fmt.Errorf("read hits by event: %w", err)
		}
		stop, err := scanHitRows(rows, fn)
		if err != nil || stop {
			return err
		}
	}
	return nil
}

// scanHitRows reads rows of hitColumns into fn and closes rows; stop reports
// that fn asked for no more.
func scanHitRows(rows *sql.Rows, fn func(*telemetry.Hit) bool) (stop bool, err error) {
	defer rows.Close()
	var h telemetry.Hit
	var ns int64
	dest := []any{&h.HitID, &h.TechniqueID, &ns, &h.Host, &h.RuleID, &h.RuleTitle, &h.RuleAuthor, &h.RuleSource,
		&h.TechniqueName, &h.Tactic, &h.Severity, &h.Confidence, &h.Description, &h.Recommendations, &h.EID,
		&h.PID, &h.Path, &h.Cmdline, &h.ParentPath, &h.Username, &h.Source}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return false, fmt.Errorf("read hits: %w", err)
		}
		h.Time = fromUnixNano(ns)
		if !fn(&h) {
			return true, nil
		}
	}
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("read hits: %w", err)
	}
	return false, nil
}

// trimIncidents drops the incident_hits rows of hits retention deleted, and
// the incidents left without hits. An incident that lost only some of its
// hits keeps its stored score and counts until it is regrouped.
func (s *Store) trimIncidents(ctx context.Context) error {
	if _, err := s.write.ExecContext(ctx,
		"DELETE FROM incident_hits WHERE NOT EXISTS (SELECT 1 FROM hits WHERE hits.hit_id = incident_hits.hit_id)"); err != nil {
		return fmt.Errorf("retention of incidents: %w", err)
	}
	if _, err := s.write.ExecContext(ctx,
		"DELETE FROM incidents WHERE NOT EXISTS (SELECT 1 FROM incident_hits WHERE incident_hits.incident_id = incidents.incident_id)"); err != nil {
		return fmt.Errorf("retention of incidents: %w", err)
	}
	return nil
}

// ScanHitHeads streams the hits of host in [lo, hi] (both inclusive), oldest
// first, with only the columns grouping needs (hit_id, technique_id, time,
// host, rule_id, rule_title, rule_source, tactic, severity, confidence, eid,
// pid; the texts are left empty). The *telemetry.Hit is reused between calls.
func (s *Store) ScanHitHeads(ctx context.Context, host string, lo, hi time.Time, fn func(*telemetry.Hit) bool) error {
	rows, err := s.read.QueryContext(ctx, `SELECT hit_id, technique_id, time, host, rule_id, rule_title, rule_source,
		tactic, severity, confidence, eid, pid FROM hits WHERE host = ? AND time >= ? AND time <= ? ORDER BY time, hit_id`,
		host, lo.UnixNano(), hi.UnixNano())
	if err != nil {
		return fmt.Errorf("read hits of %s: %w", host, err)
	}
	defer rows.Close()
	var h telemetry.Hit
	var ns int64
	for rows.Next() {
		if err := rows.Scan(&h.HitID, &h.TechniqueID, &ns, &h.Host, &h.RuleID, &h.RuleTitle, &h.RuleSource, &h.Tactic,
			&h.Severity, &h.Confidence, &h.EID, &h.PID); err != nil {
			return fmt.Errorf("read hits of %s: %w", host, err)
		}
		h.Time = fromUnixNano(ns)
		if !fn(&h) {
			return nil
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read hits of %s: %w", host, err)
	}
	return nil
}

// Indicators hits can share across hosts (RelatedHitIDs).
const (
	ShareUser    = "user"
	ShareCmdline = "cmdline"
	ShareHashes  = "hashes"
)

// RelatedHitIDs returns the ids of hits in [lo, hi] (any host) whose user
// (ShareUser), command line (ShareCmdline) or process hashes (ShareHashes,
// Sysmon's Hashes of the hit's event) equal value.
func (s *Store) RelatedHitIDs(ctx context.Context, share, value string, lo, hi time.Time) ([]string, error) {
	var q string
	switch share {
	case ShareUser:
		q = "SELECT DISTINCT hit_id FROM hits WHERE time >= ? AND time <= ? AND username = ?"
	case ShareCmdline:
		q = "SELECT DISTINCT hit_id FROM hits WHERE time >= ? AND time <= ? AND cmdline = ?"
	case ShareHashes:
		q = "SELECT DISTINCT h.hit_id FROM hits h JOIN events e ON e.eid = h.eid WHERE h.time >= ? AND h.time <= ? AND e.hashes = ?"
	default:
		return nil, fmt.Errorf("related hits: unknown indicator %q", share)
	}
	rows, err := s.read.QueryContext(ctx, q+" ORDER BY 1", lo.UnixNano(), hi.UnixNano(), value)
	if err != nil {
		return nil, fmt.Errorf("related hits by %s: %w", share, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("related hits by %s: %w", share, err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}
