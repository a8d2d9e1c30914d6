// Package sqlitestore is the fleet store in one SQLite file (modernc.org/sqlite,
// WAL): the default, for one server. A server killed mid-write reopens with
// every committed write (each store call is one transaction); with
// synchronous=NORMAL a power loss may drop the last commits, which
// PostgreSQL does not.
package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/fleet/store/internal/sqldb"
)

// FileName is the store's file in a data directory.
const FileName = "fleet.db"

// Path returns the store's file in dataDir.
func Path(dataDir string) string { return filepath.Join(dataDir, FileName) }

var dialect = sqldb.Dialect{
	Name:     "SQLite",
	Identity: "INTEGER PRIMARY KEY AUTOINCREMENT",
}

// Open opens or creates the store at path and migrates its schema.
func Open(ctx context.Context, path string) (store.Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open fleet store: %w", err)
	}
	dsn := func(extra ...string) string {
		q := url.Values{}
		for _, p := range append([]string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(NORMAL)",
			"foreign_keys(0)"}, extra...) {
			q.Add("_pragma", p)
		}
		q.Set("_txlock", "immediate")
		return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	}
	w, err := sql.Open("sqlite", dsn())
	if err != nil {
		return nil, fmt.Errorf("open fleet store %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	r, err := sql.Open("sqlite", dsn("query_only(1)"))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open fleet store %s: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(4)
	db := sqldb.New(w, r, dialect)
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open fleet store %s: %w", path, err)
	}
	return db, nil
}
