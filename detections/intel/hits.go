package intel

import (
	"context"
	"fmt"
	"time"

	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

// NewSightings turns the matches of one event into IoC sightings, their
// groups and software resolved by l (nil: as the intel gave them). A
// sighting of a stored event (eid > 0) has an id derived from the event and
// the indicator, so matching it again adds nothing.
func NewSightings(ev *telemetry.Event, eid int64, ms []Match, l *Linker, detectedAt time.Time) []telemetry.IOCSighting {
	out := make([]telemetry.IOCSighting, 0, len(ms))
	for i := range ms {
		m := &ms[i]
		h := telemetry.IOCSighting{HitID: hitID(ev.Host, eid, m), Time: ev.Time, DetectedAt: detectedAt, Host: ev.Host,
			Indicator: m.Indicator, Type: string(m.Type), Source: m.Source, Confidence: m.Confidence, Field: m.Field,
			Value: m.Value, EID: eid, PID: ev.PID, ProcessKey: ev.ProcessKey, Path: ev.Path,
			Techniques: m.Techniques, Groups: m.Groups, Malware: m.Malware}
		if l != nil {
			h.Context = l.Context(m.Groups, m.Malware)
		}
		out = append(out, h)
	}
	return out
}

// MoveSightings moves the IoC sightings an older Quarry kept in the intel
// database (its hits table) into the event store, where they now live
// beside their hit rows, and drops that table. It does nothing when there
// is none; it returns how many it moved.
func (d *DB) MoveSightings(ctx context.Context, st *eventstore.Store) (int, error) {
	var n int
	if err := d.db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'hits'").Scan(&n); err != nil {
		return 0, fmt.Errorf("intel database: %w", err)
	}
	if n == 0 {
		return 0, nil
	}
	rows, err := d.db.QueryContext(ctx, `SELECT hit_id, time, detected_at, host, indicator, type, source, confidence,
		field, value, eid, pid, process_key, path, techniques, groups_, malware, context FROM hits ORDER BY time, hit_id`)
	if err != nil {
		return 0, fmt.Errorf("intel database: read its ioc hits: %w", err)
	}
	var ss []telemetry.IOCSighting
	for rows.Next() {
		var h telemetry.IOCSighting
		var t, det int64
		var tech, groups, malware string
		if err := rows.Scan(&h.HitID, &t, &det, &h.Host, &h.Indicator, &h.Type, &h.Source, &h.Confidence, &h.Field,
			&h.Value, &h.EID, &h.PID, &h.ProcessKey, &h.Path, &tech, &groups, &malware, &h.Context); err != nil {
			rows.Close()
			return 0, fmt.Errorf("intel database: read its ioc hits: %w", err)
		}
		h.Time, h.DetectedAt = time.Unix(0, t).UTC(), time.Unix(0, det).UTC()
		h.Techniques, h.Groups, h.Malware = split(tech), split(groups), split(malware)
		ss = append(ss, h)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("intel database: read its ioc hits: %w", err)
	}
	// The hit rows (kind ioc) were stored in the event store already; only
	// the sightings move. Stored first, dropped after: a crash between
	// moves them again, which stores nothing twice.
	if _, err := st.SaveSightings(ctx, ss, nil); err != nil {
		return 0, fmt.Errorf("move ioc hits to the event store: %w", err)
	}
	if _, err := d.db.ExecContext(ctx, "DROP TABLE hits"); err != nil {
		return 0, fmt.Errorf("intel database: drop its ioc hits: %w", err)
	}
	return len(ss), nil
}
