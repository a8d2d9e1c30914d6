// Package sqlengine is Quarry's embedded SQL engine: every table of a
// tables.Registry served as a virtual table of an in-memory SQLite database
// (modernc.org/sqlite, no cgo), so Quarry answers SQL without osquery.
//
// Constraints in WHERE (=, IN, <, <=, >, >=, LIKE) reach each table's
// Generate; SQLite re-checks every row and does ORDER BY, LIMIT, joins and
// aggregates. Ad-hoc queries are read-only: an authorizer on every connection
// refuses anything but reading.
package sqlengine

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"regexp"
	"strings"

	msqlite "modernc.org/sqlite"

	"github.com/quarry-sec/quarry/tables"
)

// Engine is an embedded SQL engine over a registry of tables. It is safe for
// concurrent use.
type Engine struct {
	db    *sql.DB
	reg   *tables.Registry
	conns *connStates
}

type config struct {
	maxConns int
}

// Option configures an Engine.
type Option func(*config)

// WithMaxConnections bounds the engine's connection pool (each connection is
// its own in-memory database with every table attached). Default 4.
func WithMaxConnections(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.maxConns = n
		}
	}
}

// Open returns an engine serving every table registered in reg at the time
// each connection opens.
func Open(reg *tables.Registry, opts ...Option) (*Engine, error) {
	cfg := config{maxConns: 4}
	for _, o := range opts {
		o(&cfg)
	}
	drv := &msqlite.Driver{}
	conns := &connStates{}
	if err := drv.RegisterModule("quarry", &module{reg: reg, conns: conns}); err != nil {
		return nil, fmt.Errorf("register virtual table module: %w", err)
	}
	db := sql.OpenDB(connector{drv: drv, dsn: ":memory:", reg: reg, conns: conns})
	db.SetMaxOpenConns(cfg.maxConns)
	db.SetMaxIdleConns(cfg.maxConns)
	db.SetConnMaxLifetime(0)
	e := &Engine{db: db, reg: reg, conns: conns}
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open embedded engine: %w", err)
	}
	return e, nil
}

// Close closes every connection.
func (e *Engine) Close() error { return e.db.Close() }

// Registry returns the tables the engine serves.
func (e *Engine) Registry() *tables.Registry { return e.reg }

// ErrReadOnly is wrapped in the error of a statement that would write.
var ErrReadOnly = errors.New("ad-hoc queries are read-only")

// ErrNoSuchTable is wrapped in the error of a query naming an unknown table.
var ErrNoSuchTable = errors.New("no such table")

// Query runs one read-only SQL statement. The caller closes the rows.
// Errors carry SQLite's message; an unknown table's error lists the closest
// table names, and a write is refused with ErrReadOnly.
//
// ctx reaches every table the statement reads: when it is cancelled or its
// deadline passes, each table's Generate sees its context done, and the
// statement ends with ctx's error.
func (e *Engine) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if kw := writeKeyword(query); kw != "" {
		return nil, fmt.Errorf("%s statements are refused: %w", kw, ErrReadOnly)
	}
	// The statement runs on a connection of its own, whose tables' cursors
	// take ctx (the SQLite virtual-table API passes none).
	conn, err := e.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	if err := conn.Raw(func(dc any) error { return e.conns.bind(dc, ctx) }); err != nil {
		conn.Close()
		return nil, fmt.Errorf("query: %w", err)
	}
	rows, err := conn.QueryContext(ctx, query, args...)
	if err != nil {
		conn.Close()
		return nil, e.explain(query, err)
	}
	// Close waits for the rows to be closed, then returns the connection to
	// the pool; the next statement on it binds its own context.
	go conn.Close()
	return rows, nil
}

var (
	noSuchTable  = regexp.MustCompile(`no such table: (?:\w+\.)?(\w+)`)
	noSuchColumn = regexp.MustCompile(`no such column: ((?:\w+\.)?(\w+))`)
	word         = regexp.MustCompile(`\w+`)
)

// ErrNoSuchColumn is wrapped in the error of a query naming an unknown
// column.
var ErrNoSuchColumn = errors.New("no such column")

// unknownColumn says where an unknown column is in query and which columns
// of the tables the query names come closest.
func (e *Engine) unknownColumn(query, ref, name string) error {
	var cols []string
	seen := map[string]bool{}
	for _, w := range word.FindAllString(query, -1) {
		t, ok := e.reg.Table(strings.ToLower(w))
		if !ok || seen[t.Name] {
			continue
		}
		seen[t.Name] = true
		for _, c := range t.Columns {
			cols = append(cols, c.Name)
		}
	}
	msg := fmt.Sprintf("%s: %s", ErrNoSuchColumn, ref)
	if close := tables.Closest(name, cols, 3); len(close) > 0 {
		msg += fmt.Sprintf(" (did you mean %s?)", strings.Join(close, ", "))
	}
	se := locate(&SyntaxError{Message: msg, Near: ref, Offset: tokenOffset(query, ref)}, query)
	return &columnError{se}
}

// columnError is an unknown column, located in the query like a syntax
// error; it wraps ErrNoSuchColumn.
type columnError struct{ *SyntaxError }

func (c *columnError) Unwrap() []error { return []error{c.SyntaxError, ErrNoSuchColumn} }

// explain turns SQLite's errors into ones an analyst can act on.
func (e *Engine) explain(query string, err error) error {
	msg := err.Error()
	if se := syntaxError(query, msg); se != nil {
		return se
	}
	if m := noSuchTable.FindStringSubmatch(msg); m != nil {
		if close := e.reg.Closest(m[1], 3); len(close) > 0 {
			return fmt.Errorf("%w: %s (did you mean %s?)", ErrNoSuchTable, m[1], strings.Join(close, ", "))
		}
		return fmt.Errorf("%w: %s (see `quarry tables`)", ErrNoSuchTable, m[1])
	}
	if m := noSuchColumn.FindStringSubmatch(msg); m != nil {
		return e.unknownColumn(query, m[1], m[2])
	}
	if strings.Contains(msg, "not authorized") {
		return fmt.Errorf("statement refused: %w (%v)", ErrReadOnly, err)
	}
	return err
}

// connector opens connections of one private driver, so the module of this
// engine reaches only its own connections, and readies each connection: every
// table attached, then the read-only authorizer installed.
type connector struct {
	drv   *msqlite.Driver
	dsn   string
	reg   *tables.Registry
	conns *connStates
}

func (c connector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	id := c.conns.add(conn)
	if err := prepareConn(ctx, conn, c.reg, id); err != nil {
		c.conns.remove(id)
		conn.Close()
		return nil, err
	}
	return conn, nil
}

func (c connector) Driver() driver.Driver { return c.drv }

func prepareConn(ctx context.Context, conn driver.Conn, reg *tables.Registry, id uint64) error {
	ex, ok := conn.(driver.ExecerContext)
	if !ok {
		return errors.New("sqlite connection cannot execute statements")
	}
	for _, name := range reg.Names() {
		stmt := fmt.Sprintf("CREATE VIRTUAL TABLE %s USING quarry(%s, %d)", quoteIdent(name), name, id)
		if _, err := ex.ExecContext(ctx, stmt, nil); err != nil {
			return fmt.Errorf("attach table %s: %w", name, err)
		}
	}
	a, ok := conn.(msqlite.AuthorizerRegisterer)
	if !ok {
		return errors.New("sqlite driver offers no authorizer: cannot make queries read-only")
	}
	return a.RegisterAuthorizer(readOnly)
}
