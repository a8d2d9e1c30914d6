package intel

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite"
)

// FileName is the intel database's name in the data directory.
const FileName = "intel.db"

// Path returns the intel database's path in a data directory.
func Path(dataDir string) string { return filepath.Join(dataDir, FileName) }

// DB keeps feeds and their indicators; the indicators found in events
// (IoC sightings) are kept in the event store.
type DB struct {
	db  *sql.DB
	now func() time.Time
}

const schema = `
CREATE TABLE IF NOT EXISTS feeds (
	source  TEXT PRIMARY KEY,
	format  TEXT NOT NULL,
	origin  TEXT NOT NULL,
	added   INTEGER NOT NULL,
	updated INTEGER NOT NULL,
	count   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS indicators (
	type        TEXT NOT NULL,
	value       TEXT NOT NULL,
	source      TEXT NOT NULL,
	confidence  INTEGER NOT NULL,
	ref         TEXT NOT NULL,
	first_seen  INTEGER NOT NULL,
	updated     INTEGER NOT NULL,
	valid_until INTEGER NOT NULL,
	techniques  TEXT NOT NULL,
	groups_     TEXT NOT NULL,
	malware     TEXT NOT NULL,
	PRIMARY KEY (type, value, source)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS indicators_source ON indicators(source);
`

// Open opens or creates the intel database at path.
func Open(path string) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open intel database: %w", err)
	}
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(NORMAL)"} {
		q.Add("_pragma", p)
	}
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open intel database %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("open intel database %s: %w", path, err)
	}
	return &DB{db: db, now: time.Now}, nil
}

// Close closes the database.
func (d *DB) Close() error { return d.db.Close() }

// SetClock replaces the clock deciding expiry (tests).
func (d *DB) SetClock(now func() time.Time) { d.now = now }

// Now returns the database's clock's time.
func (d *DB) Now() time.Time { return d.now() }

// FeedInfo describes one stored feed.
type FeedInfo struct {
	Source         string
	Format         Format
	Origin         string
	Added, Updated time.Time
	// Count is the number of indicators stored for it; Active those not
	// expired.
	Count, Active int64
}

// ErrNoFeed is returned for an operation on a source that is not stored.
var ErrNoFeed = errors.New("no such intel source")

// Store writes a feed in one transaction. With replace (update), the
// source's indicators that the feed no longer holds are removed; without
// (add), the feed's indicators are merged into the source's. An indicator
// already stored keeps its first_seen. Nothing is written if any part
// fails.
func (d *DB) Store(ctx context.Context, f *Feed, replace bool) (err error) {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store feed %s: %w", f.Source, err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	now := f.opts.Now.UnixNano()
	var added int64
	switch err := tx.QueryRowContext(ctx, "SELECT added FROM feeds WHERE source = ?", f.Source).Scan(&added); {
	case errors.Is(err, sql.ErrNoRows):
		added = now
	case err != nil:
		return fmt.Errorf("store feed %s: %w", f.Source, err)
	}
	if replace {
		if _, err := tx.ExecContext(ctx, "CREATE TEMP TABLE IF NOT EXISTS keep (type TEXT, value TEXT, PRIMARY KEY(type, value)) WITHOUT ROWID"); err != nil {
			return fmt.Errorf("store feed %s: %w", f.Source, err)
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM temp.keep"); err != nil {
			return fmt.Errorf("store feed %s: %w", f.Source, err)
		}
	}
	ins, err := tx.PrepareContext(ctx, `INSERT INTO indicators
		(type, value, source, confidence, ref, first_seen, updated, valid_until, techniques, groups_, malware)
		VALUES (?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT(type, value, source) DO UPDATE SET confidence = excluded.confidence, ref = excluded.ref,
		updated = excluded.updated, valid_until = excluded.valid_until, techniques = excluded.techniques,
		groups_ = excluded.groups_, malware = excluded.malware`)
	if err != nil {
		return fmt.Errorf("store feed %s: %w", f.Source, err)
	}
	defer ins.Close()
	var keep *sql.Stmt
	if replace {
		if keep, err = tx.PrepareContext(ctx, "INSERT OR IGNORE INTO temp.keep VALUES (?, ?)"); err != nil {
			return fmt.Errorf("store feed %s: %w", f.Source, err)
		}
		defer keep.Close()
	}
	for i := range f.Indicators {
		in := &f.Indicators[i]
		if _, err := ins.ExecContext(ctx, string(in.Type), in.Value, f.Source, in.Confidence, in.Ref,
			in.FirstSeen.UnixNano(), in.Updated.UnixNano(), unixOrZero(in.ValidUntil),
			join(in.Techniques), join(in.Groups), join(in.Malware)); err != nil {
			return fmt.Errorf("store feed %s: indicator %s (%s): %w", f.Source, in.Value, in.Ref, err)
		}
		if keep != nil {
			if _, err := keep.ExecContext(ctx, string(in.Type), in.Value); err != nil {
				return fmt.Errorf("store feed %s: %w", f.Source, err)
			}
		}
	}
	if replace {
		if _, err := tx.ExecContext(ctx, `DELETE FROM indicators WHERE source = ?
			AND NOT EXISTS (SELECT 1 FROM temp.keep k WHERE k.type = indicators.type AND k.value = indicators.value)`, f.Source); err != nil {
			return fmt.Errorf("store feed %s: %w", f.Source, err)
		}
	}
	var count int64
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM indicators WHERE source = ?", f.Source).Scan(&count); err != nil {
		return fmt.Errorf("store feed %s: %w", f.Source, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO feeds (source, format, origin, added, updated, count) VALUES (?,?,?,?,?,?)
		ON CONFLICT(source) DO UPDATE SET format = excluded.format, origin = excluded.origin,
		updated = excluded.updated, count = excluded.count`,
		f.Source, string(f.Format), f.Origin, added, now, count); err != nil {
		return fmt.Errorf("store feed %s: %w", f.Source, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store feed %s: %w", f.Source, err)
	}
	return nil
}

// Remove deletes a source and its indicators (its hits stay).
func (d *DB) Remove(ctx context.Context, source string) (int64, error) {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("remove %s: %w", source, err)
	}
	defer tx.Rollback()
	r, err := tx.ExecContext(ctx, "DELETE FROM feeds WHERE source = ?", source)
	if err != nil {
		return 0, fmt.Errorf("remove %s: %w", source, err)
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return 0, fmt.Errorf("remove %s: %w", source, ErrNoFeed)
	}
	r, err = tx.ExecContext(ctx, "DELETE FROM indicators WHERE source = ?", source)
	if err != nil {
		return 0, fmt.Errorf("remove %s: %w", source, err)
	}
	n, _ := r.RowsAffected()
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("remove %s: %w", source, err)
	}
	return n, nil
}

// Feeds lists the stored feeds by source name.
func (d *DB) Feeds(ctx context.Context) ([]FeedInfo, error) {
	now := d.now().UnixNano()
	rows, err := d.db.QueryContext(ctx, `SELECT f.source, f.format, f.origin, f.added, f.updated, f.count,
		(SELECT count(*) FROM indicators i WHERE i.source = f.source AND (i.valid_until = 0 OR i.valid_until > ?))
		FROM feeds f ORDER BY f.source`, now)
	if err != nil {
		return nil, fmt.Errorf("list feeds: %w", err)
	}
	defer rows.Close()
	var out []FeedInfo
	for rows.Next() {
		var fi FeedInfo
		var added, updated int64
		if err := rows.Scan(&fi.Source, &fi.Format, &fi.Origin, &added, &updated, &fi.Count, &fi.Active); err != nil {
			return nil, fmt.Errorf("list feeds: %w", err)
		}
		fi.Added, fi.Updated = time.Unix(0, added).UTC(), time.Unix(0, updated).UTC()
		out = append(out, fi)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list feeds: %w", err)
	}
	return out, nil
}

// IndicatorFilter selects stored indicators; zero fields do not filter.
type IndicatorFilter struct {
	Values  []string // normalized values
	Types   []Type
	Sources []string
	// ActiveOnly leaves expired indicators out.
	ActiveOnly bool
}

// ScanIndicators streams the stored indicators matching f to fn until fn
// returns false. The *Indicator is reused between calls.
func (d *DB) ScanIndicators(ctx context.Context, f IndicatorFilter, fn func(*Indicator) bool) error {
	var conds []string
	var args []any
	in := func(col string, vals []string) {
		if len(vals) == 0 {
			return
		}
		conds = append(conds, col+" IN ("+strings.TrimSuffix(strings.Repeat("?,", len(vals)), ",")+")")
		for _, v := range vals {
			args = append(args, v)
		}
	}
	in("value", f.Values)
	ts := make([]string, len(f.Types))
	for i, t := range f.Types {
		ts[i] = string(t)
	}
	in("type", ts)
	in("source", f.Sources)
	if f.ActiveOnly {
		conds = append(conds, "(valid_until = 0 OR valid_until > ?)")
		args = append(args, d.now().UnixNano())
	}
	q := `SELECT type, value, source, confidence, ref, first_seen, updated, valid_until, techniques, groups_, malware
		FROM indicators`
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	rows, err := d.db.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("read indicators: %w", err)
	}
	defer rows.Close()
	var ind Indicator
	for rows.Next() {
		var typ, tech, groups, malware string
		var first, updated, until int64
		if err := rows.Scan(&typ, &ind.Value, &ind.Source, &ind.Confidence, &ind.Ref, &first, &updated, &until,
			&tech, &groups, &malware); err != nil {
			return fmt.Errorf("read indicators: %w", err)
		}
		ind.Type = Type(typ)
		ind.FirstSeen, ind.Updated = time.Unix(0, first).UTC(), time.Unix(0, updated).UTC()
		ind.ValidUntil = time.Time{}
		if until != 0 {
			ind.ValidUntil = time.Unix(0, until).UTC()
		}
		ind.Techniques, ind.Groups, ind.Malware = split(tech), split(groups), split(malware)
		if !fn(&ind) {
			return nil
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read indicators: %w", err)
	}
	return nil
}

// Matcher builds a matcher over the indicators active now.
func (d *DB) Matcher(ctx context.Context) (*Matcher, error) {
	counts := map[Type]int{}
	rows, err := d.db.QueryContext(ctx, "SELECT type, count(*) FROM indicators WHERE valid_until = 0 OR valid_until > ? GROUP BY type", d.now().UnixNano())
	if err != nil {
		return nil, fmt.Errorf("count indicators: %w", err)
	}
	for rows.Next() {
		var t string
		var n int
		if err := rows.Scan(&t, &n); err != nil {
			rows.Close()
			return nil, fmt.Errorf("count indicators: %w", err)
		}
		counts[Type(t)] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count indicators: %w", err)
	}
	b := NewBuilderSized(counts)
	err = d.ScanIndicators(ctx, IndicatorFilter{ActiveOnly: true}, func(in *Indicator) bool {
		b.Add(*in)
		return true
	})
	if err != nil {
		return nil, err
	}
	return b.Build(), nil
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func join(s []string) string { return strings.Join(s, ",") }

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
