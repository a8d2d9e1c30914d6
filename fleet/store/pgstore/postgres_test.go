package pgstore

import (
	"context"
	"database/sql"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/fleet/store/internal/sqldb"
	"github.com/quarry-sec/quarry/fleet/store/storetest"
	"github.com/quarry-sec/quarry/internal/pgtest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := Open(context.Background(), pgtest.FreshSchema(t))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestConcurrentMigrations(t *testing.T) {
	dsn := pgtest.FreshSchema(t)
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
		t.Fatalf("%s: %v", pgtest.EnvDSN, err)
	}
	return *cfg
}

func TestUpgrade(t *testing.T) {
	storetest.RunUpgrade(t, func(t *testing.T) (*sql.DB, func() store.Store) {
		dsn := pgtest.FreshSchema(t)
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
