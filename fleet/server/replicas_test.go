package server

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/fleet/store/pgstore"
	"github.com/quarry-sec/quarry/fleet/store/sqlitestore"
	"github.com/quarry-sec/quarry/internal/pgtest"
)

// TestReplicas runs two servers, each with its own connection to one
// database, and checks a host can talk to either: enroll on one, hunt
// created on one, read and answered through the other.
func TestReplicas(t *testing.T) {
	t.Run("SQLite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), sqlitestore.FileName)
		testReplicas(t, func() store.Store {
			st, err := sqlitestore.Open(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		})
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		dsn := os.Getenv("QUARRY_TEST_POSTGRES")
		if dsn == "" {
			t.Skip("PostgreSQL replica test skipped: QUARRY_TEST_POSTGRES is not set (.ci/run sets it)")
		}
		dsn = pgtest.Schema(t, dsn)
		testReplicas(t, func() store.Store {
			st, err := pgstore.Open(context.Background(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		})
	})
}

func testReplicas(t *testing.T, open func() store.Store) {
	one := newFixture(t, open())
	two := newFixture(t, open())
	twoClock := two.clock // what replica two's server reads
	two.clock = one.clock
	key := one.enroll("host-a", "ubuntu")
	code, h := two.api("POST", "/api/v1/hunts", map[string]any{"sql": "SELECT 42 AS answer;", "targets": "all", "deadline": "5m"})
	if code != 201 {
		t.Fatalf("hunt on replica two: %d %v", code, h)
	}
	id := h["id"].(string)
	if _, rd := one.osquery("distributed/read", map[string]any{"node_key": key}); rd["queries"].(map[string]any)[id] == nil {
		t.Fatalf("replica one did not hand out the hunt: %v", rd)
	}
	if _, rd := two.osquery("distributed/read", map[string]any{"node_key": key}); len(huntQueries(rd)) != 0 {
		t.Fatalf("replica two handed the hunt out again: %v", rd)
	}
	if code, _ := two.osquery("distributed/write", map[string]any{"node_key": key,
		"queries": map[string]any{id: []any{map[string]string{"answer": "42"}}}, "statuses": map[string]any{id: 0}}); code != 200 {
		t.Fatal(code)
	}
	_, h = one.api("GET", "/api/v1/hunts/"+id, nil)
	if h["done"] != true || h["rows_total"] != float64(1) {
		t.Errorf("hunt seen from replica one: %v", h)
	}
	if code, _ := two.osquery("log", map[string]any{"node_key": key, "log_type": "result", "data": []any{
		map[string]any{"name": "pack_quarry-detections_quarry_ioa_hits", "unixTime": 1, "action": "added",
			"columns": hitRow("x", "T1059", "execution", "high", one.clock.Now())}}}); code != 200 {
		t.Fatal(code)
	}
	if _, out := one.api("GET", "/api/v1/detections", nil); out["total"] != float64(1) {
		t.Errorf("detection seen from replica one: %v", out)
	}

	// The host enrolls again through replica one: its old key stops
	// working there at once, and on replica two, which has it cached,
	// within the node cache's TTL.
	cfg := func(f *fixture, key string) int {
		code, _ := f.osquery("config", map[string]any{"node_key": key})
		return code
	}
	newKey := one.enroll("host-a", "ubuntu")
	if code := cfg(one, key); code != 401 {
		t.Errorf("old key on the replica that re-enrolled the host: %d, want 401", code)
	}
	if code := cfg(two, key); code != 200 {
		t.Errorf("old key on replica two within the TTL: %d, want 200 (cached)", code)
	}
	twoClock.Add(DefaultNodeCacheTTL)
	if code := cfg(two, key); code != 401 {
		t.Errorf("old key on replica two after the TTL: %d, want 401", code)
	}
	if cfg(one, newKey) != 200 || cfg(two, newKey) != 200 {
		t.Error("new key refused")
	}
}

// watch has the fixture's server watch its store until the test ends,
// and waits until it listens.
func (f *fixture) watch() {
	f.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.srv.Watch(ctx)
	}()
	f.t.Cleanup(func() { cancel(); <-done })
	for deadline := time.Now().Add(10 * time.Second); !f.srv.watching().live; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			f.t.Fatal("the server's watch did not start listening")
		}
	}
}

// TestWatchedReplicas: two servers on one PostgreSQL database, each
// watching it, cache node keys and "no hunt for this host" long (their
// clocks stand still here), yet a host enrolled again through one loses
// its old key on the other, and a hunt created through one reaches a host
// through the other, within moments (the notification's way), not a TTL.
func TestWatchedReplicas(t *testing.T) {
	dsn := os.Getenv("QUARRY_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("PostgreSQL replica test skipped: QUARRY_TEST_POSTGRES is not set (.ci/run sets it)")
	}
	dsn = pgtest.Schema(t, dsn)
	open := func() store.Store {
		st, err := pgstore.Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	one, two := newFixture(t, open()), newFixture(t, open())
	one.watch()
	two.watch()
	within := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 5 s", what)
			}
		}
	}
	key := one.enroll("host-a", "ubuntu")
	read := func(f *fixture, key string) map[string]any {
		code, rd := f.osquery("distributed/read", map[string]any{"node_key": key})
		if code != 200 {
			t.Fatalf("distributed read: %d %v", code, rd)
		}
		return huntQueries(rd)
	}
	hunt := func(f *fixture) string {
		code, h := f.api("POST", "/api/v1/hunts", map[string]any{"sql": "SELECT 42 AS answer;", "targets": "all", "deadline": "5m"})
		if code != 201 {
			t.Fatalf("hunt: %d %v", code, h)
		}
		return h["id"].(string)
	}
	first := hunt(one)
	within("first hunt handed out by replica two", func() bool { return read(two, key)[first] != nil })
	if code, _ := two.osquery("distributed/write", map[string]any{"node_key": key,
		"queries": map[string]any{first: []any{map[string]string{"answer": "42"}}}, "statuses": map[string]any{first: 0}}); code != 200 {
		t.Fatal(code)
	}
	// Nothing left for the host: replica two knows it, and asks the
	// store no more, until a hunt is created anywhere.
	if qs := read(two, key); len(qs) != 0 {
		t.Fatalf("answered hunt handed out again: %v", qs)
	}
	h, err := one.st.HostByNodeKey(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	if !two.srv.huntQuiet(h.ID, two.clock.Now()) {
		t.Fatal("replica two does not know the host has nothing to take")
	}
	second := hunt(one)
	within("second hunt handed out by replica two", func() bool { return read(two, key)[second] != nil })

	// Enrolled again through replica one: the old key, cached by
	// replica two for long, stops working there too.
	if code, _ := two.osquery("config", map[string]any{"node_key": key}); code != 200 {
		t.Fatalf("config on replica two: %d", code)
	}
	newKey := one.enroll("host-a", "ubuntu")
	within("old key refused by replica two", func() bool {
		code, _ := two.osquery("config", map[string]any{"node_key": key})
		return code == 401
	})
	for _, f := range []*fixture{one, two} {
		if code, _ := f.osquery("config", map[string]any{"node_key": newKey}); code != 200 {
			t.Errorf("new key refused: %d", code)
		}
	}
}
