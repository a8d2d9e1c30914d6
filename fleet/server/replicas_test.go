package server

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/fleet/store/pgstore"
	"github.com/quarry-sec/quarry/fleet/store/sqlitestore"
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
		dsn = pgSchema(t, dsn)
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
