// Package sqldb is the fleet store over database/sql, shared by the SQLite
// and PostgreSQL stores: the SQL is written once with ? placeholders and
// portable syntax (ON CONFLICT, RETURNING, || and LIKE), and a Dialect
// supplies what differs — placeholder style, identity columns and the
// migration lock.
package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Dialect is what differs between the databases.
type Dialect struct {
	// Name is the database's name in errors.
	Name string
	// Numbered makes placeholders $1, $2… (PostgreSQL) instead of ?.
	Numbered bool
	// Identity is the column definition of an auto-numbered primary key.
	Identity string
	// MigrationLock, when set, runs first in the migration transaction to
	// keep concurrent servers from migrating at once.
	MigrationLock string
	// WritableCTE: the database runs data-modifying statements in WITH
	// (PostgreSQL), so a write of several statements can be one.
	WritableCTE bool
	// Arrays: the driver binds Go slices ([]string, []int64) as arrays, so
	// multi-row writes are one statement text over unnest whatever their
	// row count (see rowSource) (PostgreSQL).
	Arrays bool
	// LoneStatements: a group commit that is one statement runs it
	// outside a transaction (see merge.lone): the database commits a lone
	// statement by itself, and BEGIN and COMMIT are two round trips to a
	// database server (PostgreSQL; nothing to save in SQLite).
	LoneStatements bool
	// LogLane group-commits log writes (AppendHostLogs) apart from the
	// other writes, in a transaction of their own on another connection:
	// they touch other tables (results, detections, incidents) than
	// enrollments, last-seen times and hunts do, so neither waits for the
	// other's commit (PostgreSQL; SQLite has one writer).
	LogLane bool
	// Notify, when set, is the channel (PostgreSQL's NOTIFY) on which
	// writes tell the servers watching the store of the changes that
	// invalidate their caches (see store.Watcher).
	Notify string
}

// DB is the fleet store over a database: w takes the writes, r the reads
// (the same pool for PostgreSQL; for SQLite one writing connection and
// several query-only readers).
type DB struct {
	w, r   *sql.DB
	d      Dialect
	ws, rs *stmtCache // prepared statements of w and r

	g    group // the group commit of writes
	logs group // of log writes, with Dialect.LogLane

	knownSets sync.Map // schema set hashes known to be stored (see setKnown)

	qs sync.Map     // statement texts rewritten by q: ? text → numbered
	qn atomic.Int64 // entries of qs
}

// group is a line of writes waiting for a group commit, and whether one is
// under way.
type group struct {
	mu      sync.Mutex
	pending []*writeReq // writes waiting for the group commit leader
	leading bool        // a group commit is under way
}

// writeReq is one write transaction waiting for a group commit.
type writeReq struct {
	ctx   context.Context
	fn    func(*sql.Tx) error
	merge *merge // nil: fn runs alone
	done  chan writeResult
}

// merge lets a write run together with the other writes of its kind in a
// group commit, in a few multi-row statements instead of one statement
// (one round trip to the database) each: run gets the args of every such
// write of the group and stores each one's results in its arg. Should run
// fail, the group runs again with each of those writes alone (fn).
//
// lone, when set, writes the args of a group that are all of its kind in
// one statement on the writer pool, outside any transaction (with
// Dialect.LoneStatements), and reports true; or reports false, having
// written nothing, when they take more than one statement (then run
// writes them in the group's transaction). A statement is atomic: should
// the database refuse it, nothing of it is written, and the group runs
// again with each write alone, as when run fails. Should the client fail
// after the database ran it (the group's deadline while reading its
// RETURNING rows, a dropped connection), it is written though reported
// failed, and the writes run again alone: every lone write is idempotent
// (results DO NOTHING, detection upserts, hand-outs and answers checking
// sent_at and status), so nothing is doubled; a hand-out so retried finds
// its hunts already sent and the host gets them at the resend interval.
type merge struct {
	kind string
	arg  any
	run  func(ctx context.Context, tx *sql.Tx, args []any) error
	lone func(ctx context.Context, args []any) (bool, error)
}

// execer runs statements: a group's transaction, or the writer pool for a
// group of one statement (see merge.lone).
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// writeResult answers a waiting write: its error, or lead (run the
// pending writes now).
type writeResult struct {
	err  error
	lead bool
}

// Group commit bounds.
const (
	// maxGroup bounds the writes of one group commit, so one commit does
	// not hold the writer for long. Most writes of a busy fleet merge
	// (enrollments, hunt hand-outs and answers, schema reports: a few
	// hundred to a statement), so a group of thousands is a few
	// statements; 256 bounded 10,000 hosts enrolling in ten seconds to
	// 256 enrollments per commit, fewer than they came.
	maxGroup = 4096
	// groupTimeout bounds one group commit: it runs other callers' writes
	// too, so not on any one caller's context.
	groupTimeout = 30 * time.Second
)

// New returns the store over w and r.
func New(w, r *sql.DB, d Dialect) *DB {
	return &DB{w: w, r: r, d: d, ws: newStmtCache(w), rs: newStmtCache(r)}
}

// Close closes both pools.
func (db *DB) Close() error {
	db.ws.close()
	db.rs.close()
	if db.r == db.w {
		return db.w.Close()
	}
	return errors.Join(db.r.Close(), db.w.Close())
}

// q rewrites ? placeholders for the dialect. The rewrites of the first
// qCacheMax statement texts are kept: the hot writes' texts are few, and
// rewriting one rune at a time was 2 % of the server's CPU under load.
func (db *DB) q(query string) string {
	if !db.d.Numbered {
		return query
	}
	if v, ok := db.qs.Load(query); ok {
		return v.(string)
	}
	out := numbered(query)
	if len(query) <= qCacheText && db.qn.Load() < qCacheMax {
		if _, loaded := db.qs.LoadOrStore(query, out); !loaded {
			db.qn.Add(1)
		}
	}
	return out
}

// qCacheMax bounds the statement texts DB.q keeps, and qCacheText the
// length of one: texts that grow with a request (a filter's OR list, an IN
// list) are rewritten each time rather than filling the cache.
const (
	qCacheMax  = 4096
	qCacheText = 2048
)

// numbered rewrites ? placeholders as $1, $2….
func numbered(query string) string {
	var b strings.Builder
	n := 0
	for _, c := range query {
		if c == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// tx runs fn in a write transaction, committed when fn returns nil, and
// returns once it is committed (or fn's error, with nothing of fn written).
//
// Writes are group-committed: those that arrive while one is under way run
// together in the next transaction (thousands of hosts enrolling or
// answering a hunt at once would otherwise queue one commit each — behind
// SQLite's one writer, or, in PostgreSQL, for one WAL flush each); a write
// whose fn fails is left out of it and the others commit (see runGroup). The
// caller that finds no write under way leads: it runs everything pending
// (its own write among it, at most maxGroup), commits, answers those
// callers and hands the lead to the first caller that arrived meanwhile.
// fn runs on the leader's goroutine, and must use its own context for its
// statements; it may run more than once (see runGroup).
func (db *DB) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	return db.txMerged(ctx, nil, fn)
}

// txMerged is tx for a write that may run merged with others of its kind
// (m; see merge); fn is the write alone.
func (db *DB) txMerged(ctx context.Context, m *merge, fn func(*sql.Tx) error) error {
	return db.txIn(ctx, &db.g, m, fn)
}

// txLogs is tx for a write of logs: in the log lane with Dialect.LogLane.
func (db *DB) txLogs(ctx context.Context, fn func(*sql.Tx) error) error {
	return db.txIn(ctx, db.logLane(), nil, fn)
}

// logLane is the group commit log writes join: their own with
// Dialect.LogLane, else the one of every write.
func (db *DB) logLane() *group {
	if db.d.LogLane {
		return &db.logs
	}
	return &db.g
}

// txIn is txMerged in the group commit g.
func (db *DB) txIn(ctx context.Context, g *group, m *merge, fn func(*sql.Tx) error) error {
	req := &writeReq{ctx: ctx, fn: fn, merge: m, done: make(chan writeResult, 1)}
	g.mu.Lock()
	g.pending = append(g.pending, req)
	if g.leading {
		g.mu.Unlock()
		r := <-req.done
		if !r.lead {
			return r.err
		}
		g.mu.Lock()
	} else {
		g.leading = true
	}
	n := min(len(g.pending), maxGroup)
	batch := g.pending[:n:n]
	g.pending = g.pending[n:]
	g.mu.Unlock()

	errs := db.runGroup(batch)
	var own error
	for i, w := range batch {
		if w == req {
			own = errs[i]
			continue
		}
		w.done <- writeResult{err: errs[i]}
	}

	g.mu.Lock()
	if len(g.pending) > 0 {
		next := g.pending[0]
		g.mu.Unlock()
		next.done <- writeResult{lead: true}
	} else {
		g.leading = false
		g.mu.Unlock()
	}
	return own
}

// runGroup runs writes in one transaction and returns each one's error.
// The writes run one after the other with no savepoint between them (a
// savepoint is two more round trips to PostgreSQL per write); when one
// fails, the transaction is rolled back, that write gets its error and the
// others run again, in a new transaction, without it. So a write's fn may
// run more than once: it must have no effect outside tx but its results.
func (db *DB) runGroup(batch []*writeReq) []error {
	errs := make([]error, len(batch))
	if len(batch) == 1 && (!db.d.LoneStatements || batch[0].merge == nil || batch[0].merge.lone == nil) {
		errs[0] = db.txOne(batch[0].ctx, batch[0].fn)
		return errs
	}
	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	defer cancel()
	todo := make([]int, 0, len(batch)) // indexes of the writes still to commit
	for i := range batch {
		todo = append(todo, i)
	}
	unmerged := map[string]bool{} // kinds whose merged statements failed
	for len(todo) > 0 {
		if done, kind := db.tryLone(ctx, batch, todo, errs, unmerged); done {
			return errs
		} else if kind != "" {
			unmerged[kind] = true
			continue
		}
		failed, kind, err := db.tryGroup(ctx, batch, todo, errs, unmerged)
		if err != nil { // the transaction itself failed: every write left fails
			for _, i := range todo {
				if errs[i] == nil {
					errs[i] = fmt.Errorf("group commit: %w", err)
				}
			}
			return errs
		}
		if kind != "" {
			unmerged[kind] = true
			continue
		}
		if failed < 0 {
			return errs
		}
		todo = slices.DeleteFunc(todo, func(i int) bool { return i == failed || errs[i] != nil })
	}
	return errs
}

// tryLone writes the writes todo of batch in one statement outside a
// transaction when they are all merges of one kind (not unmerged) whose
// lone takes them (see merge), and reports done. A write whose context
// ended is skipped with its context's error. kind is the kind whose lone
// statement failed (nothing of it written); neither: the group needs a
// transaction.
func (db *DB) tryLone(ctx context.Context, batch []*writeReq, todo []int, errs []error, unmerged map[string]bool) (done bool, kind string) {
	if !db.d.LoneStatements {
		return false, ""
	}
	var m *merge
	args := make([]any, 0, len(todo))
	var ended []int // writes whose context ended: not run
	for _, i := range todo {
		w := batch[i]
		if w.ctx.Err() != nil {
			ended = append(ended, i)
			continue
		}
		if w.merge == nil || w.merge.lone == nil || unmerged[w.merge.kind] || (m != nil && w.merge.kind != m.kind) {
			return false, ""
		}
		m = w.merge
		args = append(args, m.arg)
	}
	if m == nil {
		return false, "" // no write left to run: tryGroup answers them
	}
	ok, err := m.lone(ctx, args)
	if err != nil {
		return false, m.kind
	}
	if !ok {
		return false, ""
	}
	for _, i := range ended {
		errs[i] = batch[i].ctx.Err()
	}
	return true, ""
}

// tryGroup runs the writes todo of batch in one transaction: those that
// merge (and whose kind is not unmerged) together after the others. When a
// write fails it rolls back, notes that write's error in errs and returns
// its index; when a merged run fails, it rolls back and returns its kind;
// -1 and "" when all committed. A write whose context ended is skipped
// with its context's error. err is a failure of the transaction itself.
func (db *DB) tryGroup(ctx context.Context, batch []*writeReq, todo []int, errs []error, unmerged map[string]bool) (failed int, kind string, err error) {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return -1, "", err
	}
	abort := func() {
		tx.Rollback()
		db.ws.prepareWanted(ctx)
	}
	var kinds []string
	byKind := map[string][]int{}
	for _, i := range todo {
		w := batch[i]
		if err := w.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		if m := w.merge; m != nil && !unmerged[m.kind] {
			if _, ok := byKind[m.kind]; !ok {
				kinds = append(kinds, m.kind)
			}
			byKind[m.kind] = append(byKind[m.kind], i)
			continue
		}
		if err := w.fn(tx); err != nil {
			abort()
			errs[i] = err
			return i, "", nil
		}
	}
	for _, k := range kinds {
		idx := byKind[k]
		args := make([]any, len(idx))
		for j, i := range idx {
			args[j] = batch[i].merge.arg
		}
		if err := batch[idx[0]].merge.run(ctx, tx, args); err != nil {
			abort()
			return -1, k, nil
		}
	}
	err = tx.Commit()
	db.ws.prepareWanted(ctx)
	return -1, "", err
}

// txOne runs fn in a transaction of its own.
func (db *DB) txOne(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	err = tx.Commit()
	db.ws.prepareWanted(ctx)
	return err
}

// ms is t in UNIX milliseconds, 0 for the zero time.
func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// fromMS is the inverse of ms.
func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// Migrate brings the schema to the newest version, each step in the one
// transaction, and records the version in schema_migrations.
func (db *DB) Migrate(ctx context.Context) error {
	return db.MigrateTo(ctx, len(migrations))
}

// MigrateTo brings the schema to version (at most the newest): tests of
// upgrades start from an older schema with it.
func (db *DB) MigrateTo(ctx context.Context, version int) error {
	version = min(version, len(migrations))
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if db.d.MigrationLock != "" {
			if _, err := tx.ExecContext(ctx, db.d.MigrationLock); err != nil {
				return fmt.Errorf("lock: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
  version INTEGER PRIMARY KEY, applied BIGINT NOT NULL)`); err != nil {
			return err
		}
		var have int
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
			return err
		}
		if have > len(migrations) {
			return fmt.Errorf("schema version %d is newer than this Quarry's (%d)", have, len(migrations))
		}
		for i := have; i < version; i++ {
			for _, stmt := range splitStatements(strings.ReplaceAll(migrations[i], "{{ID}}", db.d.Identity)) {
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("migration %d: %w", i+1, err)
				}
			}
			if fn := goMigrations[i+1]; fn != nil {
				if err := fn(ctx, tx, db); err != nil {
					return fmt.Errorf("migration %d: %w", i+1, err)
				}
			}
			if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO schema_migrations (version, applied) VALUES (?, ?)`),
				i+1, time.Now().UnixMilli()); err != nil {
				return fmt.Errorf("migration %d: %w", i+1, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("migrate %s fleet store: %w", db.d.Name, err)
	}
	return nil
}

// splitStatements splits a migration on semicolons at line ends.
func splitStatements(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ";\n") {
		if p := strings.TrimSpace(part); p != "" {
			out = append(out, strings.TrimSuffix(p, ";"))
		}
	}
	return out
}
