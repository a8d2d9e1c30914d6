package pgstore

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/fleet/store/internal/sqldb"
	"github.com/quarry-sec/quarry/fleet/store/storetest"
)

// EnvDSN names the environment variable with the test database's DSN
// (.ci/run starts a throwaway PostgreSQL and sets it).
const EnvDSN = "QUARRY_TEST_POSTGRES"

var schemaSeq atomic.Int64

// freshSchema creates a schema of its own for one test, dropped at the end,
// and returns a DSN whose search_path is that schema.
func freshSchema(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv(EnvDSN)
	if dsn == "" {
		t.Skipf("PostgreSQL tests skipped: %s is not set (.ci/run starts a throwaway PostgreSQL and sets it)", EnvDSN)
	}
	name := fmt.Sprintf("quarry_test_%d_%d_%d", os.Getpid(), time.Now().UnixNano()%1e9, schemaSeq.Add(1))
	admin := sql.OpenDB(stdlib.GetConnector(mustConfig(t, dsn)))
	defer admin.Close()
	if _, err := admin.Exec("CREATE SCHEMA " + name); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		admin := sql.OpenDB(stdlib.GetConnector(mustConfig(t, dsn)))
		defer admin.Close()
		admin.Exec("DROP SCHEMA " + name + " CASCADE")
	})
	if strings.Contains(dsn, "://") {
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		return dsn + sep + "search_path=" + name
	}
	return dsn + " search_path=" + name
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := Open(context.Background(), freshSchema(t))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestConcurrentMigrations(t *testing.T) {
	dsn := freshSchema(t)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			s, err := Open(context.Background(), dsn)
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestBadDSN(t *testing.T) {
	if _, err := Open(context.Background(), "postgres://nobody@127.0.0.1:1/x?connect_timeout=1"); err == nil {
		t.Fatal("Open of an unreachable server: no error")
	}
}
func mustConfig(t *testing.T, dsn string) pgx.ConnConfig {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatalf("%s: %v", EnvDSN, err)
	}
	return *cfg
}

func TestUpgrade(t *testing.T) {
	storetest.RunUpgrade(t, func(t *testing.T) (*sql.DB, func() store.Store) {
		dsn := freshSchema(t)
		raw := sql.OpenDB(stdlib.GetConnector(mustConfig(t, dsn)))
		t.Cleanup(func() { raw.Close() })
		if err := sqldb.New(raw, raw, dialect).MigrateTo(context.Background(), 1); err != nil {
			t.Fatal(err)
		}
		return raw, func() store.Store {
			s, err := Open(context.Background(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	})
}
