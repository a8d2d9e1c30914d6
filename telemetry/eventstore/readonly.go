package eventstore

import (
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// ErrReadOnly is what a write to a store opened with OpenReadOnly fails
// with.
var ErrReadOnly = errors.New("event store opened read-only")

// CheckWritable reports whether the store at path can be opened for
// writing: an error wrapping fs.ErrPermission ("permission denied") that
// names the path when the file or its directory cannot be written. SQLite
// itself would only say "unable to open database file (14)".
func CheckWritable(path string) error {
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		// Open creates it: the nearest existing parent must be writable.
		for p := dir; ; {
			parent := filepath.Dir(p)
			if parent == p {
				return nil
			}
			if _, err := os.Stat(parent); err == nil {
				return access(parent, "create the data directory in")
			}
			p = parent
		}
	}
	if err := access(dir, "write in"); err != nil {
		return err
	}
	if _, err := os.Stat(path); err == nil {
		return access(path, "write")
	}
	return nil
}

// OpenReadOnly opens an existing store for reading only, for a user who
// may read the data directory but not write it: nothing is created or
// migrated, retention does not run, and writes fail. A store in WAL mode
// whose -wal and -shm files are absent and cannot be created is opened as
// immutable (the store must then not change while it is open). A store
// that does not exist or cannot be read is an error naming the path
// ("permission denied" when it is not readable); so is one from another
// schema version (open it once writable to upgrade it).
func OpenReadOnly(path string, opts ...Option) (*Store, error) {
	cfg := config{maxAge: DefaultMaxAge, maxBytes: DefaultMaxBytes, readers: 4, now: time.Now}
	for _, o := range opts {
		o(&cfg)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open event store read-only: %w", err)
	}
	f.Close()
	var db *sql.DB
	for _, extra := range []string{"mode=ro", "mode=ro&immutable=1"} {
		dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + extra + "&_pragma=busy_timeout(10000)&_pragma=query_only(1)"
		if db, err = sql.Open("sqlite", dsn); err != nil {
			return nil, fmt.Errorf("open event store %s read-only: %w", path, err)
		}
		var v int
		if err = db.QueryRow("PRAGMA user_version").Scan(&v); err == nil {
			if v != schemaVersion {
				db.Close()
				return nil, fmt.Errorf("open event store %s read-only: schema version %d, this Quarry reads %d (open it once as a user who may write it, to upgrade it)", path, v, schemaVersion)
			}
			break
		}
		db.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("open event store %s read-only: %w", path, err)
	}
	db.SetMaxOpenConns(cfg.readers)
	s := &Store{path: path, write: db, read: db, readOnly: true, maxAge: cfg.maxAge, maxBytes: cfg.maxBytes, now: cfg.now}
	return s, nil
}
