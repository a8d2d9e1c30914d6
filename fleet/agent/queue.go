package agent

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// DefaultQueueBytes bounds the disk queue when no limit is given.
const DefaultQueueBytes = 64 << 20

// Queue is the agent's disk-backed log queue: result and status logs, and
// answers to live queries (KindLive), wait in a small SQLite file until the
// server acknowledges them (HTTP 200), so what is written while the server
// is unreachable is sent after it comes back, each once. It is bounded in bytes: a push past the bound drops the oldest
// logs and counts them, for a status log to report. The same file holds the
// previous results of each scheduled query (differential state), so a
// result log and the state it was computed against commit together.
//
// A Queue is safe for concurrent use.
type Queue struct {
	db       *sql.DB
	mu       sync.Mutex // guards bytes and serializes writers
	bytes    int64
	maxBytes int64
}

// Item is one queued log.
type Item struct {
	ID   int64
	Body []byte
}

const queueSchema = `
CREATE TABLE IF NOT EXISTS queue (
	id   INTEGER PRIMARY KEY AUTOINCREMENT,
	kind TEXT NOT NULL,
	body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS queue_kind ON queue(kind, id);
CREATE TABLE IF NOT EXISTS counters (
	name  TEXT PRIMARY KEY,
	value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS results (
	name    TEXT PRIMARY KEY,
	query   TEXT NOT NULL,
	epoch   INTEGER NOT NULL,
	counter INTEGER NOT NULL,
	rows    BLOB NOT NULL
);`

// OpenQueue opens or creates the queue file at path, bounded to maxBytes of
// queued logs (DefaultQueueBytes when maxBytes <= 0).
func OpenQueue(path string, maxBytes int64) (*Queue, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultQueueBytes
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open agent queue: %w", err)
	}
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(NORMAL)"} {
		q.Add("_pragma", p)
	}
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open agent queue %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(queueSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("open agent queue %s: %w", path, err)
	}
	qu := &Queue{db: db, maxBytes: maxBytes}
	if err := db.QueryRow("SELECT coalesce(sum(length(body)), 0) FROM queue").Scan(&qu.bytes); err != nil {
		db.Close()
		return nil, fmt.Errorf("open agent queue %s: %w", path, err)
	}
	return qu, nil
}

// Close closes the queue file.
func (q *Queue) Close() error { return q.db.Close() }

// Push appends logs of one kind (LogResult, LogStatus or KindLive).
func (q *Queue) Push(ctx context.Context, kind string, bodies ...[]byte) error {
	return q.commit(ctx, kind, bodies, nil)
}

// commit appends bodies and, in the same transaction, runs also (when not
// nil); the bound is enforced by dropping the oldest logs first.
func (q *Queue) commit(ctx context.Context, kind string, bodies [][]byte, also func(*sql.Tx) error) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	var add, dropped int64
	keep := bodies[:0:0]
	for _, b := range bodies {
		if int64(len(b)) > q.maxBytes {
			dropped++ // larger than the whole queue: can never be kept
			continue
		}
		add += int64(len(b))
		keep = append(keep, b)
	}
	tx, err := q.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("agent queue: %w", err)
	}
	defer tx.Rollback()
	freed, trimmed, err := q.makeRoom(ctx, tx, add)
	if err != nil {
		return err
	}
	dropped += trimmed
	for _, b := range keep {
		if _, err := tx.ExecContext(ctx, "INSERT INTO queue(kind, body) VALUES (?, ?)", kind, b); err != nil {
			return fmt.Errorf("agent queue: push: %w", err)
		}
	}
	if dropped > 0 {
		if err := addCounter(ctx, tx, counterDropped, dropped); err != nil {
			return err
		}
	}
	if also != nil {
		if err := also(tx); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("agent queue: commit: %w", err)
	}
	q.bytes += add - freed
	return nil
}

// makeRoom deletes the oldest logs until add more bytes fit; it returns the
// bytes freed and the logs dropped.
func (q *Queue) makeRoom(ctx context.Context, tx *sql.Tx, add int64) (freed, dropped int64, err error) {
	for q.bytes-freed+add > q.maxBytes {
		rows, err := tx.QueryContext(ctx, "SELECT id, length(body) FROM queue ORDER BY id LIMIT 256")
		if err != nil {
			return 0, 0, fmt.Errorf("agent queue: trim: %w", err)
		}
		var ids []int64
		for rows.Next() && q.bytes-freed+add > q.maxBytes {
			var id, n int64
			if err := rows.Scan(&id, &n); err != nil {
				rows.Close()
				return 0, 0, fmt.Errorf("agent queue: trim: %w", err)
			}
			ids = append(ids, id)
			freed += n
		}
		rows.Close()
		if len(ids) == 0 {
			return freed, dropped, nil // empty: the new logs alone exceed the bound
		}
		if err := deleteIDs(ctx, tx, ids); err != nil {
			return 0, 0, err
		}
		dropped += int64(len(ids))
	}
	return freed, dropped, nil
}

// Peek returns the oldest logs of kind, at most maxItems of them and about
// maxBytes in all (at least one), without removing them.
func (q *Queue) Peek(ctx context.Context, kind string, maxItems int, maxBytes int64) ([]Item, error) {
	rows, err := q.db.QueryContext(ctx, "SELECT id, body FROM queue WHERE kind = ? ORDER BY id LIMIT ?", kind, maxItems)
	if err != nil {
		return nil, fmt.Errorf("agent queue: peek: %w", err)
	}
	defer rows.Close()
	var out []Item
	var size int64
	for rows.Next() {
		var it Item
		if err := rows.Scan(&it.ID, &it.Body); err != nil {
			return nil, fmt.Errorf("agent queue: peek: %w", err)
		}
		if len(out) > 0 && size+int64(len(it.Body)) > maxBytes {
			break
		}
		size += int64(len(it.Body))
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("agent queue: peek: %w", err)
	}
	return out, nil
}

// Ack removes logs the server has acknowledged.
func (q *Queue) Ack(ctx context.Context, items []Item) error {
	if len(items) == 0 {
		return nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	tx, err := q.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("agent queue: ack: %w", err)
	}
	defer tx.Rollback()
	ids := make([]int64, len(items))
	for i, it := range items {
		ids[i] = it.ID
	}
	var freed int64
	if err := tx.QueryRowContext(ctx, "SELECT coalesce(sum(length(body)), 0) FROM queue WHERE id IN (SELECT value FROM json_each(?))",
		idList(ids)).Scan(&freed); err != nil {
		return fmt.Errorf("agent queue: ack: %w", err)
	}
	if err := deleteIDs(ctx, tx, ids); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("agent queue: ack: %w", err)
	}
	q.bytes -= freed
	return nil
}

// Len returns how many logs wait and their size in bytes.
func (q *Queue) Len(ctx context.Context) (int64, int64, error) {
	var n int64
	if err := q.db.QueryRowContext(ctx, "SELECT count(*) FROM queue").Scan(&n); err != nil {
		return 0, 0, fmt.Errorf("agent queue: %w", err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return n, q.bytes, nil
}

// Name of the counter of logs dropped and not yet reported.
const counterDropped = "dropped_unreported"

// Dropped returns how many logs the bound dropped that no status log has
// reported yet.
func (q *Queue) Dropped(ctx context.Context) (int64, error) {
	var n int64
	err := q.db.QueryRowContext(ctx, "SELECT value FROM counters WHERE name = ?", counterDropped).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("agent queue: %w", err)
	}
	return n, nil
}

// Reported subtracts n reported drops from the unreported count.
func (q *Queue) Reported(ctx context.Context, n int64) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, err := q.db.ExecContext(ctx, "UPDATE counters SET value = max(0, value - ?) WHERE name = ?", n, counterDropped); err != nil {
		return fmt.Errorf("agent queue: %w", err)
	}
	return nil
}

func addCounter(ctx context.Context, tx *sql.Tx, name string, n int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO counters(name, value) VALUES (?, ?)
		ON CONFLICT(name) DO UPDATE SET value = value + excluded.value`, name, n)
	if err != nil {
		return fmt.Errorf("agent queue: count %s: %w", name, err)
	}
	return nil
}

func deleteIDs(ctx context.Context, tx *sql.Tx, ids []int64) error {
	if _, err := tx.ExecContext(ctx, "DELETE FROM queue WHERE id IN (SELECT value FROM json_each(?))", idList(ids)); err != nil {
		return fmt.Errorf("agent queue: delete: %w", err)
	}
	return nil
}

// idList renders ids as a JSON array for json_each.
func idList(ids []int64) string {
	b := make([]byte, 0, len(ids)*8+2)
	b = append(b, '[')
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, "%d", id)
	}
	return string(append(b, ']'))
}
