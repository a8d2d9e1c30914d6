package server

import (
	"context"
	"os"
	"testing"

	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/fleet/store/postgres"
)

// eachStore runs fn on a fresh SQLite store and, when
// QUARRY_TEST_POSTGRES is set, on a fresh PostgreSQL schema.
func eachStore(t *testing.T, fn func(t *testing.T, st store.Store)) {
	t.Run("SQLite", func(t *testing.T) { fn(t, openSQLite(t)) })
	t.Run("PostgreSQL", func(t *testing.T) { fn(t, openPostgres(t)) })
}

// openPostgres opens a store in a fresh schema of $QUARRY_TEST_POSTGRES,
// or skips.
func openPostgres(t *testing.T) store.Store {
	t.Helper()
	dsn := os.Getenv("QUARRY_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("PostgreSQL skipped: QUARRY_TEST_POSTGRES is not set (.ci/run sets it)")
	}
	st, err := postgres.Open(context.Background(), pgSchema(t, dsn))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestAuthSchemeAnyCase: "bearer" and "nodekey" are the Bearer and
// NodeKey schemes (RFC 9110: schemes are case-insensitive).
func TestAuthSchemeAnyCase(t *testing.T) {
	f := newFixture(t, openSQLite(t))
	for _, scheme := range []string{"Bearer", "bearer", "BEARER"} {
		if code, out := f.do("GET", "/api/v1/hosts", nil, map[string]string{"Authorization": scheme + " " + f.token}); code != 200 {
			t.Errorf("%s: %d %v", scheme, code, out)
		}
	}
	if code, _ := f.do("GET", "/api/v1/hosts", nil, map[string]string{"Authorization": "Basic " + f.token}); code != 401 {
		t.Errorf("Basic: %d, want 401", code)
	}
	key := f.enroll("host-a", "ubuntu")
	code, out := f.do("POST", "/api/v1/osquery/config", []byte(`{}`), map[string]string{"Authorization": "nodekey " + key})
	if code != 200 {
		t.Errorf("nodekey: %d %v", code, out)
	}
}
