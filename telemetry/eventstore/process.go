package eventstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/quarry-sec/quarry/telemetry"
)

// Process lookups: the queries process ancestry (incidents, process_tree)
// is built from. Each returns copies the caller may keep.

// queryEvents runs a SELECT of selectColumns and returns the events.
func (s *Store) queryEvents(ctx context.Context, what, cond string, args ...any) ([]StoredEvent, error) {
	rows, err := s.read.QueryContext(ctx, "SELECT "+selectColumns+" FROM events WHERE "+cond, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []StoredEvent
	for rows.Next() {
		var ev StoredEvent
		sc := newScanner(&ev)
		if err := rows.Scan(sc.dest...); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		if err := sc.finish(&ev); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

func (s *Store) queryOne(ctx context.Context, what, cond string, args ...any) (StoredEvent, bool, error) {
	evs, err := s.queryEvents(ctx, what, cond+" LIMIT 1", args...)
	if err != nil || len(evs) == 0 {
		return StoredEvent{}, false, err
	}
	return evs[0], true, nil
}

// EventByEID returns the stored event with that eid; ok is false when there
// is none (never stored, or trimmed by retention).
func (s *Store) EventByEID(ctx context.Context, eid int64) (ev StoredEvent, ok bool, err error) {
	return s.queryOne(ctx, fmt.Sprintf("read event %d", eid), "eid = ?", eid)
}

// ExecByGUID returns the latest process start on host whose process GUID
// (Sysmon's ProcessGuid) is guid.
func (s *Store) ExecByGUID(ctx context.Context, host, guid string) (StoredEvent, bool, error) {
	return s.queryOne(ctx, "read process "+guid, "process_guid = ? AND host = ? AND kind = ? ORDER BY time DESC, eid DESC",
		guid, host, int64(telemetry.KindExec))
}

// ExecByKey returns the latest stored start of the process whose
// process_key is key.
func (s *Store) ExecByKey(ctx context.Context, key string) (StoredEvent, bool, error) {
	return s.queryOne(ctx, "read process "+key, "process_key = ? AND kind = ? ORDER BY eid DESC", key, int64(telemetry.KindExec))
}

// LatestExec returns the last start of pid on host at or before t: the
// process that had that pid at t, if it was still running (see FirstExit).
func (s *Store) LatestExec(ctx context.Context, host string, pid int64, t time.Time) (StoredEvent, bool, error) {
	return s.queryOne(ctx, fmt.Sprintf("read process %d on %s", pid, host),
		"pid = ? AND host = ? AND kind = ? AND time <= ? ORDER BY time DESC, eid DESC",
		pid, host, int64(telemetry.KindExec), t.UnixNano())
}

// FirstExit returns when pid on host first exited at or after t; ok is false
// when no exit is stored.
func (s *Store) FirstExit(ctx context.Context, host string, pid int64, t time.Time) (exit time.Time, ok bool, err error) {
	var ns int64
	err = s.read.QueryRowContext(ctx,
		"SELECT time FROM events WHERE pid = ? AND host = ? AND kind = ? AND time >= ? ORDER BY time, eid LIMIT 1",
		pid, host, int64(telemetry.KindExit), t.UnixNano()).Scan(&ns)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("read exit of %d on %s: %w", pid, host, err)
	}
	return fromUnixNano(ns), true, nil
}

// ExecsOfPID returns every stored start of pid (on host, or on every host
// when host is ""), oldest first, at most limit of them.
func (s *Store) ExecsOfPID(ctx context.Context, host string, pid int64, limit int) ([]StoredEvent, error) {
	what := fmt.Sprintf("read process %d", pid)
	if host == "" {
		return s.queryEvents(ctx, what, "pid = ? AND kind = ? ORDER BY time, eid LIMIT ?", pid, int64(telemetry.KindExec), limit)
	}
	return s.queryEvents(ctx, what, "pid = ? AND host = ? AND kind = ? ORDER BY time, eid LIMIT ?", pid, host, int64(telemetry.KindExec), limit)
}

// ExecChildren returns the process starts on host whose parent pid is ppid
// at or after from (and at or before to unless to is zero), oldest first, at
// most limit of them.
func (s *Store) ExecChildren(ctx context.Context, host string, ppid int64, from, to time.Time, limit int) ([]StoredEvent, error) {
	hi := int64(1<<63 - 1)
	if !to.IsZero() {
		hi = to.UnixNano()
	}
	return s.queryEvents(ctx, fmt.Sprintf("read children of %d on %s", ppid, host),
		"ppid = ? AND host = ? AND kind = ? AND time >= ? AND time <= ? ORDER BY time, eid LIMIT ?",
		ppid, host, int64(telemetry.KindExec), unixNano(from), hi, limit)
}

// ExecChildrenByGUID returns the process starts on host whose parent GUID is
// guid, oldest first, at most limit of them.
func (s *Store) ExecChildrenByGUID(ctx context.Context, host, guid string, limit int) ([]StoredEvent, error) {
	return s.queryEvents(ctx, "read children of "+guid,
		"parent_guid = ? AND host = ? AND kind = ? ORDER BY time, eid LIMIT ?", guid, host, int64(telemetry.KindExec), limit)
}

// EventsByEIDs returns the stored events among eids (in eid order; trimmed
// or unknown ones are left out).
func (s *Store) EventsByEIDs(ctx context.Context, eids []int64) ([]StoredEvent, error) {
	var out []StoredEvent
	for start := 0; start < len(eids); start += 500 {
		chunk := eids[start:min(start+500, len(eids))]
		args := make([]any, len(chunk))
		for i, e := range chunk {
			args[i] = e
		}
		evs, err := s.queryEvents(ctx, "read events", "eid IN ("+strings.TrimSuffix(strings.Repeat("?,", len(chunk)), ",")+") ORDER BY eid", args...)
		if err != nil {
			return nil, err
		}
		out = append(out, evs...)
	}
	return out, nil
}

// ExitsOfPID returns when pid exited on host, oldest first, at most limit
// times.
func (s *Store) ExitsOfPID(ctx context.Context, host string, pid int64, limit int) ([]time.Time, error) {
	rows, err := s.read.QueryContext(ctx, "SELECT time FROM events WHERE pid = ? AND host = ? AND kind = ? ORDER BY time, eid LIMIT ?",
		pid, host, int64(telemetry.KindExit), limit)
	if err != nil {
		return nil, fmt.Errorf("read exits of %d on %s: %w", pid, host, err)
	}
	defer rows.Close()
	var out []time.Time
	for rows.Next() {
		var ns int64
		if err := rows.Scan(&ns); err != nil {
			return nil, fmt.Errorf("read exits of %d on %s: %w", pid, host, err)
		}
		out = append(out, fromUnixNano(ns))
	}
	return out, rows.Err()
}
