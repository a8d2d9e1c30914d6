package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/quarry-sec/quarry/fleet/store"
)

// PutIntelSet implements store.Store.
func (db *DB) PutIntelSet(ctx context.Context, set *store.IntelSet) error {
	set.Updated = time.UnixMilli(time.Now().UnixMilli())
	if _, err := db.w.ExecContext(ctx, db.q(`INSERT INTO intel_sets
  (source, format, confidence, ttl_seconds, indicators, version, updated, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (source) DO UPDATE SET format = excluded.format, confidence = excluded.confidence,
  ttl_seconds = excluded.ttl_seconds, indicators = excluded.indicators, version = excluded.version,
  updated = excluded.updated, data = excluded.data`),
		set.Source, set.Format, set.Confidence, set.TTLSeconds, set.Indicators, set.Version, ms(set.Updated),
		string(set.Data)); err != nil {
		return fmt.Errorf("put intel set %q: %w", set.Source, err)
	}
	return nil
}

// DeleteIntelSet implements store.Store.
func (db *DB) DeleteIntelSet(ctx context.Context, source string) error {
	res, err := db.w.ExecContext(ctx, db.q(`DELETE FROM intel_sets WHERE source = ?`), source)
	if err != nil {
		return fmt.Errorf("delete intel set %q: %w", source, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("delete intel set %q: %w", source, store.ErrNotFound)
	}
	return nil
}

const intelSetColumns = `source, format, confidence, ttl_seconds, indicators, version, updated`

func scanIntelSet(sc interface{ Scan(...any) error }, extra ...any) (store.IntelSet, error) {
	var s store.IntelSet
	var updated int64
	err := sc.Scan(append([]any{&s.Source, &s.Format, &s.Confidence, &s.TTLSeconds, &s.Indicators, &s.Version, &updated}, extra...)...)
	s.Updated = fromMS(updated)
	return s, err
}

// IntelSets implements store.Store.
func (db *DB) IntelSets(ctx context.Context) ([]store.IntelSet, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+intelSetColumns+` FROM intel_sets ORDER BY source`)
	if err != nil {
		return nil, fmt.Errorf("list intel sets: %w", err)
	}
	defer rows.Close()
	out := []store.IntelSet{}
	for rows.Next() {
		s, err := scanIntelSet(rows)
		if err != nil {
			return nil, fmt.Errorf("list intel sets: %w", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list intel sets: %w", err)
	}
	return out, nil
}

// IntelSetData implements store.Store.
func (db *DB) IntelSetData(ctx context.Context, source string) (*store.IntelSet, error) {
	var data string
	s, err := scanIntelSet(db.r.QueryRowContext(ctx, db.q(`SELECT `+intelSetColumns+`, data FROM intel_sets WHERE source = ?`), source), &data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("intel set %q: %w", source, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("intel set %q: %w", source, err)
	}
	s.Data = []byte(data)
	return &s, nil
}
