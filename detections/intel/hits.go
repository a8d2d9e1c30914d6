package intel

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/quarry-sec/quarry/telemetry"
)

// Hit is one indicator found in one event, as the ioc_hits table shows it.
type Hit struct {
	HitID string
	// Time is the event's; DetectedAt when the match was made (a hunt finds
	// old events).
	Time, DetectedAt time.Time
	Host             string
	Match
	EID        int64 // the event's eid in the event store, 0 when not stored
	PID        int64
	ProcessKey string
	Path       string
	// Context names the linked groups and software and what they use.
	Context string
}

// NewHits turns the matches of one event into hits, their groups and
// software resolved by l (nil: as the intel gave them). A hit on a stored
// event (eid > 0) has an id derived from the event and the indicator.
func NewHits(ev *telemetry.Event, eid int64, ms []Match, l *Linker, detectedAt time.Time) []Hit {
	out := make([]Hit, 0, len(ms))
	for _, m := range ms {
		h := Hit{HitID: hitID(ev.Host, eid, &m), Time: ev.Time, DetectedAt: detectedAt, Host: ev.Host, Match: m,
			EID: eid, PID: ev.PID, ProcessKey: ev.ProcessKey, Path: ev.Path}
		if l != nil {
			h.Context = l.Context(m.Groups, m.Malware)
		}
		out = append(out, h)
	}
	return out
}

// AppendHits stores hits in one transaction; a hit of a stored event
// already recorded for the same indicator, feed and field is not stored
// again. It returns how many were new.
func (d *DB) AppendHits(ctx context.Context, hits []Hit) (int64, error) {
	if len(hits) == 0 {
		return 0, nil
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("store ioc hits: %w", err)
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO hits (hit_id, time, detected_at, host, indicator, type,
		source, confidence, field, value, eid, pid, process_key, path, techniques, groups_, malware, context)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`)
	if err != nil {
		return 0, fmt.Errorf("store ioc hits: %w", err)
	}
	defer st.Close()
	var n int64
	for i := range hits {
		h := &hits[i]
		r, err := st.ExecContext(ctx, h.HitID, h.Time.UnixNano(), h.DetectedAt.UnixNano(), h.Host, h.Indicator,
			string(h.Type), h.Source, h.Confidence, h.Field, h.Value, h.EID, h.PID, h.ProcessKey, h.Path,
			join(h.Techniques), join(h.Groups), join(h.Malware), h.Context)
		if err != nil {
			return 0, fmt.Errorf("store ioc hit of %s: %w", h.Indicator, err)
		}
		k, _ := r.RowsAffected()
		n += k
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("store ioc hits: %w", err)
	}
	return n, nil
}

// HitFilter selects stored hits; zero fields do not filter. Time bounds
// are on the event's time, Since inclusive, Until exclusive.
type HitFilter struct {
	Since, Until time.Time
	Hosts        []string
	Indicators   []string
	HitIDs       []string
}

// ScanHits streams the stored hits matching f, oldest event first, to fn
// until it returns false. The *Hit is reused between calls.
func (d *DB) ScanHits(ctx context.Context, f HitFilter, fn func(*Hit) bool) error {
	var conds []string
	var args []any
	if !f.Since.IsZero() {
		conds, args = append(conds, "time >= ?"), append(args, f.Since.UnixNano())
	}
	if !f.Until.IsZero() {
		conds, args = append(conds, "time < ?"), append(args, f.Until.UnixNano())
	}
	in := func(col string, vals []string) {
		if len(vals) == 0 {
			return
		}
		conds = append(conds, col+" IN ("+strings.TrimSuffix(strings.Repeat("?,", len(vals)), ",")+")")
		for _, v := range vals {
			args = append(args, v)
		}
	}
	in("host", f.Hosts)
	in("indicator", f.Indicators)
	in("hit_id", f.HitIDs)
	q := `SELECT hit_id, time, detected_at, host, indicator, type, source, confidence, field, value, eid, pid,
		process_key, path, techniques, groups_, malware, context FROM hits`
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	q += " ORDER BY time, hit_id"
	rows, err := d.db.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("read ioc hits: %w", err)
	}
	defer rows.Close()
	var h Hit
	for rows.Next() {
		var t, det int64
		var typ, tech, groups, malware string
		if err := rows.Scan(&h.HitID, &t, &det, &h.Host, &h.Indicator, &typ, &h.Source, &h.Confidence, &h.Field,
			&h.Value, &h.EID, &h.PID, &h.ProcessKey, &h.Path, &tech, &groups, &malware, &h.Context); err != nil {
			return fmt.Errorf("read ioc hits: %w", err)
		}
		h.Type = Type(typ)
		h.Time, h.DetectedAt = time.Unix(0, t).UTC(), time.Unix(0, det).UTC()
		h.Techniques, h.Groups, h.Malware = split(tech), split(groups), split(malware)
		if !fn(&h) {
			return nil
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read ioc hits: %w", err)
	}
	return nil
}
