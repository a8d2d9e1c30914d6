// Package eventstore is Quarry's event store: telemetry.Events in a SQLite
// database (modernc.org/sqlite, WAL) under the data directory, written in
// batches, read by time, pid, path, host and source, and trimmed by age and
// size. A process killed mid-insert leaves a store that opens with every
// committed batch intact (WAL; each batch is one transaction).
package eventstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/quarry-sec/quarry/telemetry"
)

// FileName is the store's file in a data directory.
const FileName = "events.db"

// Default retention.
const (
	DefaultMaxAge   = 7 * 24 * time.Hour
	DefaultMaxBytes = 1 << 30
)

// Store is an open event store. It is safe for concurrent use; writes are
// serialized.
type Store struct {
	path   string
	write  *sql.DB // one connection: the single writer
	read   *sql.DB // readers, query_only
	insert *sql.Stmt
	wmu    sync.Mutex
	procs  *procCache // under wmu
	// readOnly is set by OpenReadOnly: write and read are one read-only
	// pool and insert is nil.
	readOnly bool

	maxAge   time.Duration
	maxBytes int64
	now      func() time.Time
}

type config struct {
	maxAge   time.Duration
	maxBytes int64
	readers  int
	now      func() time.Time
}

// Option configures Open.
type Option func(*config)

// WithRetention sets how old (maxAge) and how large (maxBytes) the store may
// grow before EnforceRetention deletes the oldest events. Zero keeps the
// default; a negative value disables that limit.
func WithRetention(maxAge time.Duration, maxBytes int64) Option {
	return func(c *config) {
		if maxAge != 0 {
			c.maxAge = maxAge
		}
		if maxBytes != 0 {
			c.maxBytes = maxBytes
		}
	}
}

// WithReaders bounds the number of concurrent reading connections (default 4).
func WithReaders(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.readers = n
		}
	}
}

// WithClock replaces time.Now for retention (tests).
func WithClock(now func() time.Time) Option {
	return func(c *config) { c.now = now }
}

// Path returns the store's file in dataDir.
func Path(dataDir string) string { return filepath.Join(dataDir, FileName) }

// Open opens or creates the store at path.
func Open(path string, opts ...Option) (*Store, error) {
	cfg := config{maxAge: DefaultMaxAge, maxBytes: DefaultMaxBytes, readers: 4, now: time.Now}
	for _, o := range opts {
		o(&cfg)
	}
	if err := CheckWritable(path); err != nil {
		return nil, fmt.Errorf("open event store: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open event store: %w", err)
	}
	pragmas := []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(NORMAL)", "auto_vacuum(INCREMENTAL)", "foreign_keys(0)"}
	dsn := func(extra ...string) string {
		q := url.Values{}
		for _, p := range append(pragmas, extra...) {
			q.Add("_pragma", p)
		}
		return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	}
	// The writer's transactions take the write lock when they begin
	// (BEGIN IMMEDIATE): a batch reads (process identities) before it
	// writes, and a deferred transaction whose snapshot another process's
	// write made stale gets SQLITE_BUSY at once, without the busy timeout
	// (quarry detonate or import beside a running quarry up).
	w, err := sql.Open("sqlite", dsn("cache_size(-65536)")+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open event store %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	s := &Store{path: path, write: w, procs: newProcCache(), maxAge: cfg.maxAge, maxBytes: cfg.maxBytes, now: cfg.now}
	if s.now == nil {
		s.now = time.Now
	}
	if err := s.migrateWaiting(); err != nil {
		w.Close()
		return nil, fmt.Errorf("open event store %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", dsn("query_only(1)", "cache_size(-32768)"))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open event store %s: %w", path, err)
	}
	r.SetMaxOpenConns(cfg.readers)
	r.SetMaxIdleConns(cfg.readers)
	s.read = r
	s.insert, err = w.Prepare(insertKeyedSQL())
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("open event store %s: prepare insert: %w", path, err)
	}
	return s, nil
}

// migrateWaiting migrates, waiting up to openWait while another process
// holds the file in a way the busy timeout does not cover: two processes
// opening a new store at once (the one turning it to WAL needs the lock
// the other's first read holds, and SQLite answers SQLITE_BUSY at once
// rather than deadlock), e.g. quarry detonate started with quarry up.
func (s *Store) migrateWaiting() error {
	deadline := time.Now().Add(openWait)
	for pause := 20 * time.Millisecond; ; pause = min(2*pause, 500*time.Millisecond) {
		err := s.migrate()
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(pause)
	}
}

// openWait bounds migrateWaiting.
const openWait = 15 * time.Second

// isBusy reports whether err is SQLite's SQLITE_BUSY or SQLITE_LOCKED.
func isBusy(err error) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	code := e.Code() & 0xff
	return code == 5 || code == 6
}

func (s *Store) migrate() error {
	// One write transaction (BEGIN IMMEDIATE): two processes opening one
	// older store migrate it one after the other, and a crash leaves it
	// whole at its old version.
	tx, err := s.write.Begin()
	if err != nil {
		return fmt.Errorf("migrate schema: %w", err)
	}
	defer tx.Rollback()
	var v int
	if err := tx.QueryRow("PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if v > schemaVersion {
		return fmt.Errorf("store schema version %d is newer than this Quarry's (%d)", v, schemaVersion)
	}
	if v >= 1 {
		// Version 2 added events.process_key and events.truncated, version 3
		// events.rkey, version 4 events.run_id and the sandbox_runs table
		// (each filled for events stored from then on; older rows keep an
		// empty process key and no identity, so re-importing what an older
		// Quarry stored stores it again; they were never in a sandbox run),
		// version 5 sandbox_runs.stored_at (runs stored before it keep 0:
		// the fleet's pack query does not send them again), version 6 the
		// ioc_sightings table (IoC hits were kept in the intel database
		// before; intel.MoveSightings brings them over).
		for _, col := range []struct{ table, def string }{{"events", "process_key TEXT NOT NULL DEFAULT ''"},
			{"events", "truncated INTEGER NOT NULL DEFAULT 0"}, {"events", "rkey BLOB"}, {"events", "run_id TEXT NOT NULL DEFAULT ''"},
			{"sandbox_runs", "stored_at INTEGER NOT NULL DEFAULT 0"}} {
			if err := addColumn(tx, col.table, col.def); err != nil {
				return fmt.Errorf("migrate schema %d to %d: %w", v, schemaVersion, err)
			}
		}
	}
	if _, err := tx.Exec(schema + hitsSchema + incidentsSchema + identitySchema + sandboxSchema + sightingsSchema); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	if err := addColumn(tx, "incidents", "detected_at INTEGER NOT NULL DEFAULT 0"); err != nil {
		return fmt.Errorf("migrate incidents: %w", err)
	}
	if _, err := tx.Exec(`CREATE INDEX IF NOT EXISTS incidents_detected ON incidents(detected_at);
CREATE INDEX IF NOT EXISTS hits_stored ON hits(stored_at);`); err != nil {
		return fmt.Errorf("migrate incidents: %w", err)
	}
	if _, err := tx.Exec(fmt.Sprintf("PRAGMA user_version = %d", schemaVersion)); err != nil {
		return fmt.Errorf("set schema version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate schema: %w", err)
	}
	return nil
}

// addColumn adds the column def (its name first) to table unless the table
// has it already or does not exist yet (its CREATE has it).
func addColumn(tx *sql.Tx, table, def string) error {
	name, _, _ := strings.Cut(def, " ")
	var tables, has int
	if err := tx.QueryRow("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", table).Scan(&tables); err != nil {
		return err
	}
	if err := tx.QueryRow("SELECT count(*) FROM pragma_table_info(?) WHERE name = ?", table, name).Scan(&has); err != nil {
		return err
	}
	if tables == 0 || has > 0 {
		return nil
	}
	if _, err := tx.Exec("ALTER TABLE " + table + " ADD COLUMN " + def); err != nil {
		return fmt.Errorf("add %s.%s: %w", table, name, err)
	}
	return nil
}

// Close closes the store.
func (s *Store) Close() error {
	var errs []error
	if s.insert != nil {
		errs = append(errs, s.insert.Close())
	}
	if s.read != nil && s.read != s.write {
		errs = append(errs, s.read.Close())
	}
	errs = append(errs, s.write.Close())
	return errors.Join(errs...)
}

// FilePath returns the store's database file.
func (s *Store) FilePath() string { return s.path }

// Append writes events in one transaction: all of them are stored, or none
// (see StoreBatch: a record stored before is not stored again, a start
// record of a process another source recorded merges into its row). It
// returns the eid of the first event's row.
func (s *Store) Append(ctx context.Context, events []telemetry.Event) (int64, error) {
	return s.AppendTagged(ctx, events, nil)
}

// AppendTagged is Append with each event's technique tags (comma-separated
// technique IDs, from informational detections); tags may be nil.
func (s *Store) AppendTagged(ctx context.Context, events []telemetry.Event, tags []string) (int64, error) {
	var detect DetectFunc
	if tags != nil {
		detect = func([]telemetry.Event, []Stored) (Detected, error) { return Detected{Tags: tags}, nil }
	}
	res, err := s.StoreBatch(ctx, events, detect)
	if err != nil || len(res.Stored) == 0 {
		return 0, err
	}
	return res.Stored[0].EID, nil
}

// Count returns the number of stored events.
func (s *Store) Count(ctx context.Context) (int64, error) {
	var n int64
	err := s.read.QueryRowContext(ctx, "SELECT count(*) FROM events").Scan(&n)
	return n, err
}

func mergeTags(cur string, add []string) string {
	set := map[string]bool{}
	for _, t := range strings.Split(cur, ",") {
		if t != "" {
			set[t] = true
		}
	}
	for _, t := range add {
		if t != "" {
			set[t] = true
		}
	}
	out := make([]string, 0, len(set))
	for t := range set {
		out = append(out, t)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}
