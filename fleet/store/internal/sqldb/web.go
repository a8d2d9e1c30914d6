package sqldb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/telemetry"
)

var _ store.WebQueries = (*DB)(nil)

// DetectionByID implements store.WebQueries.
func (db *DB) DetectionByID(ctx context.Context, id int64) (*store.Detection, error) {
	var d store.Detection
	var t, recv, det int64
	err := db.r.QueryRowContext(ctx, db.q(`SELECT d.id, d.host_id, COALESCE(h.host_identifier, ''), COALESCE(h.hostname, ''),
  d.hit_id, d.technique_id, d.`+strings.Join(detectionFields, ", d.")+`
FROM detections d LEFT JOIN hosts h ON h.id = d.host_id WHERE d.id = ?`), id).Scan(
		&d.ID, &d.HostID, &d.HostIdentifier, &d.Hostname, &d.HitID, &d.TechniqueID,
		&t, &d.Query, &d.RuleID, &d.RuleTitle, &d.RuleAuthor, &d.RuleSource, &d.TechniqueName, &d.Tactic,
		&d.Severity, &d.Confidence, &d.Description, &d.Recommendations, &d.EID, &d.PID, &d.Path, &d.Cmdline,
		&d.ParentPath, &d.Username, &d.Source, &recv, &det)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("detection %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("detection %d: %w", id, err)
	}
	d.Time, d.ReceivedAt, d.DetectedAt = fromMS(t), fromMS(recv), fromMS(det)
	d.Kind = telemetry.KindOf(d.RuleSource)
	return &d, nil
}

// HostByID implements store.WebQueries.
func (db *DB) HostByID(ctx context.Context, id string) (*store.Host, error) {
	h, err := scanHost(db.r.QueryRowContext(ctx, db.q(`SELECT `+hostColumns+` FROM hosts WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("host %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("host %s: %w", id, err)
	}
	return h, nil
}

// CountHosts implements store.WebQueries.
func (db *DB) CountHosts(ctx context.Context, onlineSince time.Time) (total, online int, err error) {
	err = db.r.QueryRowContext(ctx, db.q(`SELECT count(*), COALESCE(sum(CASE WHEN last_seen >= ? THEN 1 ELSE 0 END), 0) FROM hosts`),
		ms(onlineSince)).Scan(&total, &online)
	if err != nil {
		return 0, 0, fmt.Errorf("count hosts: %w", err)
	}
	return total, online, nil
}

// CountBySeverity implements store.WebQueries.
func (db *DB) CountBySeverity(ctx context.Context, f store.DetectionFilter) (map[string]int64, error) {
	cond, args := detectionWhere(f)
	rows, err := db.r.QueryContext(ctx, db.q(`SELECT d.severity, count(*) FROM detections d`+cond+` GROUP BY d.severity`), args...)
	if err != nil {
		return nil, fmt.Errorf("count detections by severity: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var sev string
		var n int64
		if err := rows.Scan(&sev, &n); err != nil {
			return nil, fmt.Errorf("count detections by severity: %w", err)
		}
		out[sev] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count detections by severity: %w", err)
	}
	return out, nil
}

// RecentHunts implements store.WebQueries.
func (db *DB) RecentHunts(ctx context.Context, n int) ([]store.Hunt, error) {
	rows, err := db.r.QueryContext(ctx, db.q(`SELECT id, query_sql, targets, created, deadline FROM hunts
ORDER BY created DESC, id LIMIT ?`), limit(n))
	if err != nil {
		return nil, fmt.Errorf("recent hunts: %w", err)
	}
	defer rows.Close()
	var out []store.Hunt
	for rows.Next() {
		var h store.Hunt
		var targets string
		var created, deadline int64
		if err := rows.Scan(&h.ID, &h.SQL, &targets, &created, &deadline); err != nil {
			return nil, fmt.Errorf("recent hunts: %w", err)
		}
		if err := json.Unmarshal([]byte(targets), &h.Targets); err != nil {
			return nil, fmt.Errorf("recent hunts: hunt %s: targets: %w", h.ID, err)
		}
		h.Created, h.Deadline = fromMS(created), fromMS(deadline)
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("recent hunts: %w", err)
	}
	return out, nil
}
