package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/quarry-sec/quarry/fleet/store"
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
