package sqldb

import (
	"context"
	"database/sql"
	"strings"
	"sync"
)

// stmtCache prepares each statement text once per pool and keeps it:
// parsing SQL was a fifth of the fleet server's CPU under load when every
// request prepared its statements anew. A *sql.Stmt is safe for concurrent
// use and re-prepared by database/sql on each connection as needed.
type stmtCache struct {
	pool *sql.DB
	mu   sync.Mutex
	m    map[string]*sql.Stmt
	want map[string]bool // asked for inside a transaction, not yet prepared
}

func newStmtCache(pool *sql.DB) *stmtCache {
	return &stmtCache{pool: pool, m: map[string]*sql.Stmt{}, want: map[string]bool{}}
}

// cached returns the prepared statement for query if there is one, and
// otherwise notes that it is wanted.
func (c *stmtCache) cached(query string) (*sql.Stmt, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.m[query]
	if !ok {
		c.want[query] = true
	}
	return s, ok
}

// prepareWanted prepares the statements transactions asked for. It runs
// after a transaction ends: preparing on the pool during one would wait for
// the connection the transaction holds (SQLite has one writer).
func (c *stmtCache) prepareWanted(ctx context.Context) {
	c.mu.Lock()
	var qs []string
	for q := range c.want {
		qs = append(qs, q)
	}
	c.mu.Unlock()
	for _, q := range qs {
		if _, err := c.get(ctx, q); err == nil {
			c.mu.Lock()
			delete(c.want, q)
			c.mu.Unlock()
		}
	}
}

// get returns the prepared statement for query (already in the dialect's
// placeholder form), preparing it on the pool the first time. It must not
// be called while holding a transaction of a one-connection pool.
func (c *stmtCache) get(ctx context.Context, query string) (*sql.Stmt, error) {
	c.mu.Lock()
	s, ok := c.m[query]
	c.mu.Unlock()
	if ok {
		return s, nil
	}
	s, err := c.pool.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.m[query]; ok { // prepared meanwhile by another caller
		s.Close()
		return prev, nil
	}
	c.m[query] = s
	return s, nil
}

// close closes every cached statement.
func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.m {
		s.Close()
	}
	c.m = map[string]*sql.Stmt{}
}

// txStmt returns the cached writer statement for query, bound to tx; the
// first time, it prepares it on tx and has it cached once tx ends.
func (db *DB) txStmt(ctx context.Context, tx *sql.Tx, query string) (*sql.Stmt, error) {
	q := db.q(query)
	if s, ok := db.ws.cached(q); ok {
		return tx.StmtContext(ctx, s), nil
	}
	return tx.PrepareContext(ctx, q)
}

// readStmt returns the cached reader statement for query.
func (db *DB) readStmt(ctx context.Context, query string) (*sql.Stmt, error) {
	return db.rs.get(ctx, db.q(query))
}

// valuesSQL is head + " VALUES " + rows groups of cols placeholders + "\n"
// + tail: a multi-row INSERT.
func valuesSQL(head string, cols, rows int, tail string) string {
	group := "(" + strings.TrimSuffix(strings.Repeat("?, ", cols), ", ") + ")"
	var b strings.Builder
	b.Grow(len(head) + rows*(len(group)+2) + len(tail) + 10)
	b.WriteString(head)
	b.WriteString(" VALUES ")
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(group)
	}
	b.WriteString("\n")
	b.WriteString(tail)
	return b.String()
}
