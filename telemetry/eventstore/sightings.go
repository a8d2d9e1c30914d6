package eventstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/quarry-sec/quarry/telemetry"
)

// sightingsSchema keeps the IoC sightings (ioc_hits): what only an
// indicator's hit has, beside its hit rows (kind ioc) in hits, under the
// same hit_id.
const sightingsSchema = `
CREATE TABLE IF NOT EXISTS ioc_sightings (
	hit_id      TEXT PRIMARY KEY,
	time        INTEGER NOT NULL,
	detected_at INTEGER NOT NULL,
	host        TEXT NOT NULL,
	indicator   TEXT NOT NULL,
	type        TEXT NOT NULL,
	source      TEXT NOT NULL,
	confidence  INTEGER NOT NULL,
	field       TEXT NOT NULL,
	value       TEXT NOT NULL,
	eid         INTEGER NOT NULL,
	pid         INTEGER NOT NULL,
	process_key TEXT NOT NULL,
	path        TEXT NOT NULL,
	techniques  TEXT NOT NULL,
	groups_     TEXT NOT NULL,
	malware     TEXT NOT NULL,
	context     TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ioc_sightings_time ON ioc_sightings(time);
CREATE INDEX IF NOT EXISTS ioc_sightings_detected ON ioc_sightings(detected_at);
`

// sightingsTx stores sightings in tx; one already stored (same hit id) is
// not stored again. It returns how many were new.
func sightingsTx(ctx context.Context, tx *sql.Tx, ss []telemetry.IOCSighting) (int, error) {
	if len(ss) == 0 {
		return 0, nil
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO ioc_sightings (hit_id, time, detected_at, host, indicator,
		type, source, confidence, field, value, eid, pid, process_key, path, techniques, groups_, malware, context)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`)
	if err != nil {
		return 0, fmt.Errorf("store ioc sightings: %w", err)
	}
	defer stmt.Close()
	n := 0
	for i := range ss {
		h := &ss[i]
		r, err := stmt.ExecContext(ctx, h.HitID, unixNano(h.Time), unixNano(h.DetectedAt), h.Host, h.Indicator, h.Type,
			h.Source, h.Confidence, h.Field, h.Value, h.EID, h.PID, h.ProcessKey, h.Path,
			strings.Join(h.Techniques, ","), strings.Join(h.Groups, ","), strings.Join(h.Malware, ","), h.Context)
		if err != nil {
			return 0, fmt.Errorf("store ioc sighting of %s: %w", h.Indicator, err)
		}
		if k, _ := r.RowsAffected(); k > 0 {
			n++
		}
	}
	return n, nil
}

// SaveSightings stores IoC sightings with their hit rows (kind ioc) in one
// transaction, as a retrospective hunt finds them; what was stored before
// is not stored again. It returns how many sightings were new.
func (s *Store) SaveSightings(ctx context.Context, ss []telemetry.IOCSighting, hits []telemetry.Hit) (int, error) {
	if len(ss) == 0 && len(hits) == 0 {
		return 0, nil
	}
	if s.readOnly {
		return 0, fmt.Errorf("store ioc sightings in %s: %w", s.path, ErrReadOnly)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("store ioc sightings: %w", err)
	}
	n, err := sightingsTx(ctx, tx, ss)
	if err == nil {
		_, err = s.hitsTx(ctx, tx, hits)
	}
	if err != nil {
		tx.Rollback()
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("commit %d ioc sightings: %w", len(ss), err)
	}
	return n, nil
}

// SightingFilter selects stored IoC sightings; zero fields do not filter.
// Time bounds are on the event's time, Since inclusive, Until exclusive.
type SightingFilter struct {
	Since, Until time.Time
	Hosts        []string
	Indicators   []string
	HitIDs       []string
}

// ScanSightings streams the stored IoC sightings matching f, oldest event
// first, to fn until it returns false. The *IOCSighting is reused between
// calls.
func (s *Store) ScanSightings(ctx context.Context, f SightingFilter, fn func(*telemetry.IOCSighting) bool) error {
	var w where
	w.window(f.Since, f.Until)
	in(&w, "host", f.Hosts)
	in(&w, "indicator", f.Indicators)
	in(&w, "hit_id", f.HitIDs)
	cond, args := w.sql()
	q := `SELECT hit_id, time, detected_at, host, indicator, type, source, confidence, field, value, eid, pid,
		process_key, path, techniques, groups_, malware, context FROM ioc_sightings` + cond + " ORDER BY time, hit_id"
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("read ioc sightings: %w", err)
	}
	defer rows.Close()
	var h telemetry.IOCSighting
	for rows.Next() {
		var t, det int64
		var tech, groups, malware string
		if err := rows.Scan(&h.HitID, &t, &det, &h.Host, &h.Indicator, &h.Type, &h.Source, &h.Confidence, &h.Field,
			&h.Value, &h.EID, &h.PID, &h.ProcessKey, &h.Path, &tech, &groups, &malware, &h.Context); err != nil {
			return fmt.Errorf("read ioc sightings: %w", err)
		}
		h.Time, h.DetectedAt = fromUnixNano(t), fromUnixNano(det)
		h.Techniques, h.Groups, h.Malware = splitList(tech), splitList(groups), splitList(malware)
		if !fn(&h) {
			return nil
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read ioc sightings: %w", err)
	}
	return nil
}
