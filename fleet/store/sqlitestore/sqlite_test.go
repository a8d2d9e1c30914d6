package sqlitestore

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/fleet/store/internal/sqldb"
	"github.com/quarry-sec/quarry/fleet/store/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := Open(context.Background(), filepath.Join(t.TempDir(), FileName))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	path := Path(t.TempDir())
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	h := &store.Host{NodeKey: "k", HostIdentifier: "a"}
	if err := s.EnrollHost(ctx, h); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(ctx, path) // migrations already applied: a no-op
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, err := s.HostByNodeKey(ctx, "k"); err != nil || got.ID != h.ID {
		t.Fatalf("after reopen: %+v, %v", got, err)
	}
}

func TestUpgrade(t *testing.T) {
	storetest.RunUpgrade(t, func(t *testing.T) (*sql.DB, func() store.Store) {
		path := Path(t.TempDir())
		raw, err := sql.Open("sqlite", "file:"+path)
		if err != nil {
			t.Fatal(err)
		}
		raw.SetMaxOpenConns(1)
		t.Cleanup(func() { raw.Close() })
		if err := sqldb.New(raw, raw, dialect).MigrateTo(context.Background(), 1); err != nil {
			t.Fatal(err)
		}
		return raw, func() store.Store {
			s, err := Open(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	})
}
