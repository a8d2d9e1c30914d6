package eventstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Filter selects stored events. Zero fields do not filter. Time bounds are
// inclusive of Since and exclusive of Until.
type Filter struct {
	Since, Until time.Time
	EIDMin       int64 // eid >= EIDMin when > 0
	PIDs         []int64
	Paths        []string // exact paths
	PathLike     []string // SQL LIKE patterns on path (case-insensitive for ASCII)
	Hosts        []string
	Sources      []string
	Kinds        []int64
	ProcessKeys  []string
	RunIDs       []string // events of these sandbox runs
	// Limit stops after this many events when > 0.
	Limit int
	// Newest returns the newest events first instead of the oldest.
	Newest bool
}

func (f Filter) where() (string, []any) {
	var w where
	w.window(f.Since, f.Until)
	if f.EIDMin > 0 {
		w.add("eid >= ?", f.EIDMin)
	}
	in(&w, "pid", f.PIDs)
	in(&w, "path", f.Paths)
	in(&w, "host", f.Hosts)
	// A merged process start lists its sources ("security4688,sysmon").
	anyOf(&w, "(source = ? OR ',' || source || ',' LIKE ?)", f.Sources,
		func(v string) []any { return []any{v, "%," + v + ",%"} })
	in(&w, "kind", f.Kinds)
	in(&w, "process_key", f.ProcessKeys)
	in(&w, "run_id", f.RunIDs)
	anyOf(&w, "path LIKE ?", f.PathLike, func(p string) []any { return []any{p} })
	return w.sql()
}

// Scan streams the events matching f, in insertion order (or newest first),
// to fn until fn returns false. The *StoredEvent is reused between calls:
// copy what you keep.
func (s *Store) Scan(ctx context.Context, f Filter, fn func(*StoredEvent) bool) error {
	where, args := f.where()
	q := "SELECT " + selectColumns + " FROM events" + where
	if f.Newest {
		q += " ORDER BY eid DESC"
	}
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("read events: %w", err)
	}
	defer rows.Close()
	var ev StoredEvent
	sc := newScanner(&ev)
	for rows.Next() {
		if err := rows.Scan(sc.dest...); err != nil {
			return fmt.Errorf("read events: %w", err)
		}
		if err := sc.finish(&ev); err != nil {
			return fmt.Errorf("read events: %w", err)
		}
		if !fn(&ev) {
			return nil
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read events: %w", err)
	}
	return nil
}

// RetentionResult says what EnforceRetention removed.
type RetentionResult struct {
	DeletedByAge  int64
	DeletedBySize int64
	SizeBytes     int64 // the store's used size after trimming
}

// EnforceRetention deletes events stored longer ago than the maximum age,
// then the earliest stored events until the store's used size is under the maximum size (to
// 90% of it, so it does not trim at every call), and gives the freed pages
// back to the file system.
func (s *Store) EnforceRetention(ctx context.Context) (RetentionResult, error) {
	var res RetentionResult
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.maxAge > 0 {
		cutoff := s.now().Add(-s.maxAge).UnixNano()
		var lastEID sql.NullInt64
		if err := s.write.QueryRowContext(ctx, "SELECT max(last_eid) FROM batches WHERE stored_at < ?", cutoff).Scan(&lastEID); err != nil {
			return res, fmt.Errorf("retention by age: %w", err)
		}
		if lastEID.Valid {
			r, err := s.write.ExecContext(ctx, "DELETE FROM events WHERE eid <= ?", lastEID.Int64)
			if err != nil {
				return res, fmt.Errorf("retention by age: %w", err)
			}
			res.DeletedByAge, _ = r.RowsAffected()
			if _, err := s.write.ExecContext(ctx, "DELETE FROM batches WHERE last_eid <= ?", lastEID.Int64); err != nil {
				return res, fmt.Errorf("retention by age: %w", err)
			}
		}
		if _, err := s.write.ExecContext(ctx, "DELETE FROM hits WHERE stored_at < ?", cutoff); err != nil {
			return res, fmt.Errorf("retention of hits by age: %w", err)
		}
		if _, err := s.write.ExecContext(ctx, "DELETE FROM ioc_sightings WHERE detected_at < ?", cutoff); err != nil {
			return res, fmt.Errorf("retention of ioc sightings by age: %w", err)
		}
		if err := s.trimIncidents(ctx); err != nil {
			return res, err
		}
	}
	if s.maxBytes > 0 {
		target := s.maxBytes / 10 * 9
		for i := 0; i < 64; i++ {
			used, err := s.usedBytes(ctx)
			if err != nil {
				return res, err
			}
			if used <= s.maxBytes && (i == 0 || used <= target) {
				break
			}
			var count int64
			if err := s.write.QueryRowContext(ctx, "SELECT count(*) FROM events").Scan(&count); err != nil {
				return res, fmt.Errorf("retention by size: %w", err)
			}
			if count == 0 {
				break
			}
			perRow := max(used/count, 1)
			n := max((used-target)/perRow, 1)
			r, err := s.write.ExecContext(ctx,
				"DELETE FROM events WHERE eid IN (SELECT eid FROM events ORDER BY eid LIMIT ?)", n)
			if err != nil {
				return res, fmt.Errorf("retention by size: %w", err)
			}
			d, _ := r.RowsAffected()
			res.DeletedBySize += d
		}
	}
	if res.DeletedByAge+res.DeletedBySize > 0 {
		// The identities and processes of the events gone go with them.
		for _, q := range []string{
			"DELETE FROM merged_records WHERE eid < (SELECT coalesce(min(eid), 1 << 62) FROM events)",
			"DELETE FROM processes WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.process_key = processes.process_key)",
		} {
			if _, err := s.write.ExecContext(ctx, q); err != nil {
				return res, fmt.Errorf("retention: %w", err)
			}
		}
		s.procs = newProcCache()
		if _, err := s.write.ExecContext(ctx, "PRAGMA incremental_vacuum"); err != nil {
			return res, fmt.Errorf("retention: give back pages: %w", err)
		}
		if _, err := s.write.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
			return res, fmt.Errorf("retention: checkpoint: %w", err)
		}
	}
	used, err := s.usedBytes(ctx)
	res.SizeBytes = used
	return res, err
}

// usedBytes is the database size less its free pages.
func (s *Store) usedBytes(ctx context.Context) (int64, error) {
	var pages, free, size int64
	if err := s.write.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
		return 0, fmt.Errorf("store size: %w", err)
	}
	if err := s.write.QueryRowContext(ctx, "PRAGMA freelist_count").Scan(&free); err != nil {
		return 0, fmt.Errorf("store size: %w", err)
	}
	if err := s.write.QueryRowContext(ctx, "PRAGMA page_size").Scan(&size); err != nil {
		return 0, fmt.Errorf("store size: %w", err)
	}
	return (pages - free) * size, nil
}
