package eventstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/quarry-sec/quarry/telemetry"
)

// Activity reads: the endpoint activity tables (socket_events, file_events,
// registry_events…) read the stored events of a few event types each,
// chosen by Selectors, with the query's time, pid, host, source, eid and
// process_key constraints pushed into SQL, and decode the fields of only the
// rows they return.

// Selector chooses stored events by where they came from. Every non-empty
// list must match (source IN … AND channel IN … AND event_id IN … AND
// category IN …); an empty list does not filter. A selector with no list
// matches every event.
type Selector struct {
	Sources    []string
	Channels   []string
	EventIDs   []int
	Categories []string
}

// Match reports whether an event (before or after it is stored) is one the
// selector chooses; it agrees with the SQL a scan runs.
func (s Selector) Match(e *telemetry.Event) bool {
	return s.Matches(string(e.Source), e.Channel, e.EventID, e.Category)
}

// Matches reports whether an event of that source, channel, event ID and
// category is one the selector chooses.
func (s Selector) Matches(source, channel string, eventID int, category string) bool {
	return (len(s.Sources) == 0 || slices.Contains(s.Sources, source)) &&
		(len(s.Channels) == 0 || slices.Contains(s.Channels, channel)) &&
		(len(s.EventIDs) == 0 || slices.Contains(s.EventIDs, eventID)) &&
		(len(s.Categories) == 0 || slices.Contains(s.Categories, category))
}

// sql adds the selector's condition to w as one parenthesized term.
func (s Selector) sql() (string, []any) {
	var w where
	in(&w, "event_id", s.EventIDs)
	in(&w, "category", s.Categories)
	in(&w, "source", s.Sources)
	in(&w, "channel", s.Channels)
	if len(w.conds) == 0 {
		return "1", nil
	}
	return "(" + strings.Join(w.conds, " AND ") + ")", w.args
}

// ActivityFilter selects stored events for the activity tables. Zero fields
// do not filter; time bounds are inclusive of Since and exclusive of Until.
type ActivityFilter struct {
	// Select chooses the event types, any of the selectors matching; none
	// selects every event.
	Select       []Selector
	Since, Until time.Time
	EIDMin       int64 // eid >= EIDMin when > 0
	EIDMax       int64 // eid <= EIDMax when > 0
	// PIDs keeps events whose stored pid is one of them, and events whose
	// stored pid is unknown (-1): many Windows events name their process
	// only in their fields, which the reader then checks.
	PIDs        []int64
	Hosts       []string
	Sources     []string
	ProcessKeys []string
	// RunIDs keeps the events of these sandbox runs.
	RunIDs []string
	// TimeOrder returns the events by time, then eid, instead of the order
	// the database finds them in.
	TimeOrder bool
	// Limit stops after this many events when > 0.
	Limit int
	// NoFields leaves Activity.Fields empty: the JSON of the event's own
	// fields is not even read.
	NoFields bool
}

// Activity is one stored event as the activity tables read it: the columns
// every event has, and its own fields.
type Activity struct {
	EID        int64
	Time       time.Time
	Kind       telemetry.Kind
	Source     telemetry.Source
	Host       string
	Category   string
	EventID    int
	Channel    string
	PID        int64
	Path       string
	Cmdline    string
	Username   string
	ProcessKey string
	Techniques string
	Truncated  bool
	RunID      string // the sandbox run the event was recorded in, or ""
	Fields     telemetry.Fields
}

// Field returns one of the event's own fields, "" when absent.
func (a *Activity) Field(name string) string { return a.Fields.Value(name) }

// activityColumns are what ScanActivity reads, in scan order.
const activityColumns = `eid, time, kind, source, host, category, event_id, channel, pid, path, cmdline,
	username, process_key, techniques, truncated, run_id`

func (f ActivityFilter) where() (string, []any) {
	var w where
	if len(f.Select) > 0 {
		terms := make([]string, 0, len(f.Select))
		var args []any
		for _, s := range f.Select {
			t, a := s.sql()
			terms = append(terms, t)
			args = append(args, a...)
		}
		w.add("("+strings.Join(terms, " OR ")+")", args...)
	}
	w.window(f.Since, f.Until)
	if f.EIDMin > 0 {
		w.add("eid >= ?", f.EIDMin)
	}
	if f.EIDMax > 0 {
		w.add("eid <= ?", f.EIDMax)
	}
	if len(f.PIDs) > 0 {
		pids := append(slices.Clone(f.PIDs), telemetry.Unknown)
		in(&w, "pid", pids)
	}
	in(&w, "host", f.Hosts)
	in(&w, "source", f.Sources)
	in(&w, "process_key", f.ProcessKeys)
	in(&w, "run_id", f.RunIDs)
	return w.sql()
}

// ScanActivity streams the events f selects to fn until fn returns false.
// The *Activity is reused between calls: copy what you keep. A row whose
// fields cannot be decoded ends the scan with an error naming its eid.
func (s *Store) ScanActivity(ctx context.Context, f ActivityFilter, fn func(*Activity) bool) error {
	where, args := f.where()
	cols := activityColumns + ", fields"
	if f.NoFields {
		cols = activityColumns + ", NULL"
	}
	q := "SELECT " + cols + " FROM events" + where
	if f.TimeOrder {
		q += " ORDER BY time, eid"
	}
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("read activity: %w", err)
	}
	defer rows.Close()
	var (
		a                          Activity
		timeNS, kind, eventID, trc int64
		source                     string
		fields                     sql.NullString
	)
	dest := []any{&a.EID, &timeNS, &kind, &source, &a.Host, &a.Category, &eventID, &a.Channel, &a.PID, &a.Path,
		&a.Cmdline, &a.Username, &a.ProcessKey, &a.Techniques, &trc, &a.RunID, &fields}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("read activity: %w", err)
		}
		a.Time = fromUnixNano(timeNS)
		a.Kind = telemetry.Kind(kind)
		a.Source = telemetry.Source(source)
		a.EventID = int(eventID)
		a.Truncated = trc != 0
		a.Fields.Reset()
		if fields.Valid && fields.String != "" {
			if err := decodeFields(fields.String, &a.Fields); err != nil {
				return fmt.Errorf("read activity: event %d: fields: %w", a.EID, err)
			}
		}
		if !fn(&a) {
			return nil
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read activity: %w", err)
	}
	return nil
}
