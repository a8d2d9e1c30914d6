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
	"strconv"
	"strings"
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
}

// DB is the fleet store over a database: w takes the writes, r the reads
// (the same pool for PostgreSQL; for SQLite one writing connection and
// several query-only readers).
type DB struct {
	w, r   *sql.DB
	d      Dialect
	ws, rs *stmtCache // prepared statements of w and r
}

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

// q rewrites ? placeholders for the dialect.
func (db *DB) q(query string) string {
	if !db.d.Numbered {
		return query
	}
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

// tx runs fn in a write transaction, committed when fn returns nil.
func (db *DB) tx(ctx context.Context, fn func(*sql.Tx) error) error {
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
