package server

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/fleet/store/pgstore"
	"github.com/quarry-sec/quarry/fleet/store/sqlitestore"
	"github.com/quarry-sec/quarry/internal/pgtest"
)

func TestNodeCache(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	c := newNodeCache(5*time.Second, 8)
	a, b := &store.Host{ID: "a"}, &store.Host{ID: "b"}
	c.put("ka", a, now)
	if h, ok := c.get("ka", now.Add(4*time.Second)); !ok || h != a {
		t.Fatal("entry not found within the TTL")
	}
	if _, ok := c.get("ka", now.Add(5*time.Second)); ok {
		t.Fatal("entry found at the TTL")
	}
	c.put("ka", a, now)
	if _, ok := c.get("ka", now.Add(-time.Second)); ok {
		t.Fatal("entry found with the clock gone back")
	}
	// A host's new key replaces its old one; forgetHost drops it.
	c.put("ka", a, now)
	c.put("ka2", a, now)
	if _, ok := c.get("ka", now); ok {
		t.Error("old key still cached beside the host's new one")
	}
	c.put("kb", b, now)
	c.forgetHost("a")
	if _, ok := c.get("ka2", now); ok {
		t.Error("forgotten host still cached")
	}
	if _, ok := c.get("kb", now); !ok {
		t.Error("forgetHost dropped another host")
	}
	// Bounded: never more than size entries; expired ones go first.
	for i := range 100 {
		c.put(fmt.Sprint("k", i), &store.Host{ID: fmt.Sprint("h", i)}, now.Add(time.Duration(i)*time.Second))
		if n := c.len(); n > 8 {
			t.Fatalf("%d entries, bound 8", n)
		}
	}
	if _, ok := c.get("k99", now.Add(99*time.Second)); !ok {
		t.Error("the newest entry was evicted")
	}
	// A replaced key (the store's notification): the host's entry under
	// an older key goes, one under the new key stays, and a lookup that
	// read the old key's row before cannot put it back.
	r := newNodeCache(5*time.Second, 8)
	old, cur := &store.Host{ID: "h", NodeKey: "hash1"}, &store.Host{ID: "h", NodeKey: "hash2"}
	r.putFor("k1", old, now, time.Hour)
	r.invalidate("h", "hash2", now)
	if _, ok := r.get("k1", now); ok {
		t.Error("entry under the replaced key kept")
	}
	r.putFor("k1", old, now, time.Hour)
	if _, ok := r.get("k1", now); ok {
		t.Error("a stale lookup put the replaced key back")
	}
	r.putFor("k2", cur, now, time.Hour)
	r.invalidate("h", "hash2", now) // the notification of the new key itself
	if h, ok := r.get("k2", now.Add(30*time.Minute)); !ok || h != cur {
		t.Error("entry under the new key dropped, or its own TTL not kept")
	}
	r.clear()
	if r.len() != 0 {
		t.Error("clear left entries")
	}
	// Disabled.
	off := newNodeCache(-1, 8)
	off.put("k", a, now)
	if _, ok := off.get("k", now); ok {
		t.Error("a disabled cache answered")
	}
}

// BenchmarkNodeAuth measures an authenticated osquery request (a
// distributed read with no hunt active, the most frequent request) from
// 2,000 hosts in turn, with and without the node cache, on SQLite and, when
// QUARRY_TEST_POSTGRES is set, PostgreSQL. The handler is called directly:
// no network.
func BenchmarkNodeAuth(b *testing.B) {
	b.Run("SQLite", func(b *testing.B) {
		benchNodeAuth(b, func() store.Store {
			st, err := sqlitestore.Open(context.Background(), filepath.Join(b.TempDir(), sqlitestore.FileName))
			if err != nil {
				b.Fatal(err)
			}
			return st
		})
	})
	b.Run("PostgreSQL", func(b *testing.B) {
		dsn := os.Getenv("QUARRY_TEST_POSTGRES")
		if dsn == "" {
			b.Skip("QUARRY_TEST_POSTGRES is not set")
		}
		benchNodeAuth(b, func() store.Store {
			st, err := pgstore.Open(context.Background(), pgtest.Schema(b, dsn))
			if err != nil {
				b.Fatal(err)
			}
			return st
		})
	})
}

func benchNodeAuth(b *testing.B, open func() store.Store) {
	st := open()
	defer st.Close()
	const hosts = 2000
	keys := make([]string, hosts)
	for i := range keys {
		keys[i] = fmt.Sprintf("bench-key-%04d", i)
		if err := st.EnrollHost(context.Background(), &store.Host{NodeKey: keys[i],
			HostIdentifier: fmt.Sprint("host-", i), EnrolledAt: time.Now()}); err != nil {
			b.Fatal(err)
		}
	}
	for _, c := range []struct {
		name string
		ttl  time.Duration
	}{{"cache", DefaultNodeCacheTTL}, {"no-cache", -1}} {
		b.Run(c.name, func(b *testing.B) {
			srv, err := New(Config{Store: st, KB: benchKB(b), EnrollSecret: "x", NodeCacheTTL: c.ttl})
			if err != nil {
				b.Fatal(err)
			}
			h := srv.Handler()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				body := `{"node_key":"` + keys[i%hosts] + `"}`
				i++
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/api/v1/osquery/distributed/read", strings.NewReader(body)))
				if w.Code != 200 {
					b.Fatalf("distributed read: %d %s", w.Code, w.Body)
				}
			}
		})
	}
}

func benchKB(b *testing.B) *attack.KB {
	k, err := attack.Embedded()
	if err != nil {
		b.Fatal(err)
	}
	return k
}

// TestNodeCacheReplacedBounded: the replaced keys remembered stay within
// the cache's size however many hosts re-enroll (a restored fleet), the
// newest are kept, and a lookup of an older key of a recently replaced
// host is still not cached.
func TestNodeCacheReplacedBounded(t *testing.T) {
	c := newNodeCache(time.Minute, 4)
	now := time.Unix(1_800_000_000, 0)
	for i := range 10_000 {
		c.invalidate(fmt.Sprintf("host-%d", i), fmt.Sprintf("new-%d", i), now)
	}
	if len(c.replaced) > 4 || len(c.replacedOrder) > 4 {
		t.Fatalf("%d replaced keys remembered (%d in order), want at most 4", len(c.replaced), len(c.replacedOrder))
	}
	c.putFor("old-key", &store.Host{ID: "host-9999", NodeKey: "old-hash"}, now, time.Minute)
	if _, ok := c.get("old-key", now); ok {
		t.Error("an older key of a host replaced just now was cached")
	}
	// Past replacedKeep, the marks leave as new ones come.
	later := now.Add(replacedKeep + time.Second)
	c.invalidate("host-x", "new-x", later)
	if len(c.replaced) != 1 {
		t.Errorf("%d replaced keys after replacedKeep, want 1", len(c.replaced))
	}
}
