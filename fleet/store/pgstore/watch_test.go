package pgstore

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/internal/pgtest"
)

// TestWatch: a second store on the same database (another replica) hears
// of a host enrolled again, with its new key's hash, and of a new hunt —
// not of a first enrollment — and of its connection's loss and return.
func TestWatch(t *testing.T) {
	dsn := pgtest.FreshSchema(t)
	ctx := context.Background()
	open := func() *Store {
		s, err := Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s.(*Store)
	}
	a, b := open(), open()
	changes := make(chan store.Change, 100)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.Watch(wctx, func(c store.Change) { changes <- c })
	}()
	next := func(what string) store.Change {
		t.Helper()
		select {
		case c := <-changes:
			return c
		case <-time.After(10 * time.Second):
			t.Fatalf("no change: want %s", what)
			return store.Change{}
		}
	}
	if c := next("live"); c.Kind != store.ChangesLive {
		t.Fatalf("first change = %+v, want ChangesLive", c)
	}
	h := &store.Host{NodeKey: "k1", HostIdentifier: "host-a"}
	if err := a.EnrollHost(ctx, h); err != nil {
		t.Fatal(err)
	}
	again := &store.Host{NodeKey: "k2", HostIdentifier: "host-a"}
	if err := a.EnrollHost(ctx, again); err != nil {
		t.Fatal(err)
	}
	// Only the second enrollment replaced a key.
	if c := next("the new key"); c.Kind != store.ChangeHostKey || c.HostID != h.ID || c.NodeKeyHash != store.HashNodeKey("k2") {
		t.Fatalf("change = %+v, want host %s's new key", c, h.ID)
	}
	if err := a.CreateHunt(ctx, &store.Hunt{ID: "h1", SQL: "SELECT 1", Targets: store.Targets{All: true},
		Deadline: time.Now().Add(time.Hour)}, []string{h.ID}); err != nil {
		t.Fatal(err)
	}
	if c := next("the hunt"); c.Kind != store.ChangeHunt {
		t.Fatalf("change = %+v, want ChangeHunt", c)
	}
	// The listening connection is killed: lost, then live again.
	admin := sql.OpenDB(stdlib.GetConnector(mustConfig(t, dsn)))
	defer admin.Close()
	if _, err := admin.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
WHERE query = 'LISTEN ` + b.channel + `' AND pid <> pg_backend_pid()`); err != nil {
		t.Fatal(err)
	}
	if c := next("lost"); c.Kind != store.ChangesLost {
		t.Fatalf("change after the kill = %+v, want ChangesLost", c)
	}
	if c := next("live again"); c.Kind != store.ChangesLive {
		t.Fatalf("change after the kill = %+v, want ChangesLive", c)
	}
	cancel()
	<-done
	if c := next("lost at the end"); c.Kind != store.ChangesLost {
		t.Fatalf("last change = %+v, want ChangesLost", c)
	}
}
