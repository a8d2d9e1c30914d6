package server

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/detections/packs"

	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/fleet/store/pgstore"
	"github.com/quarry-sec/quarry/internal/pgtest"
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
	st, err := pgstore.Open(context.Background(), pgtest.Schema(t, dsn))
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

// TestNULBytes: PostgreSQL refuses NUL bytes (and invalid UTF-8) in text.
// A NUL in one field of what a host reports is stored escaped (NULEscape)
// and the rest of the batch with it; where no escape makes sense — an
// identifier, a hunt's SQL, a pack — the request is refused with 400. The
// same on SQLite and PostgreSQL.
func TestNULBytes(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		ctx := context.Background()
		key := f.enroll("host-a", "ubuntu")

		if code, out := f.osquery("enroll", enrollBody("host\x00b", "b", "ubuntu", testSecret)); code != 400 {
			t.Errorf("enroll with a NUL in host_identifier: %d %v, want 400", code, out)
		}
		if code, out := f.osquery("enroll", enrollBody("host-c", "c\x00c\xff", "ubuntu", testSecret)); code != 200 {
			t.Errorf("enroll with a NUL in hostname: %d %v, want 200", code, out)
		}
		now := time.Now()
		hit := hitRow("hit-1", "T1059.004", "execution", "high", now)
		hit["cmdline"] = "sh -c 'a\x00b'"
		hit["path"] = "/bin/\xffsh" // invalid UTF-8
		code, out := f.osquery("log", map[string]any{"node_key": key, "log_type": "result", "data": []any{
			resultItem(packs.QueryHits, now, 1, []any{hit, map[string]string{"k": "v\x00w"}}, nil)}})
		if code != 200 {
			t.Fatalf("result log with NULs: %d %v", code, out)
		}
		code, out = f.osquery("log", map[string]any{"node_key": key, "log_type": "status", "data": []any{
			map[string]any{"unixTime": now.Unix(), "severity": 0, "filename": "x.cpp\x00", "line": 1, "message": "bad\x00news", "version": "5"}}})
		if code != 200 {
			t.Fatalf("status log with NULs: %d %v", code, out)
		}
		ds, _, err := st.Detections(ctx, storeAll())
		if err != nil || len(ds) != 1 {
			t.Fatalf("detections: %v %v", ds, err)
		}
		if ds[0].Cmdline != `sh -c 'a\x00b'` || ds[0].Path != "/bin/\uFFFDsh" {
			t.Errorf("stored cmdline %q, path %q", ds[0].Cmdline, ds[0].Path)
		}
		h, err := st.HostByNodeKey(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		logs, err := st.StatusLogs(ctx, h.ID, 10)
		if err != nil || len(logs) != 1 || logs[0].Message != `bad\x00news` {
			t.Errorf("status logs: %+v %v", logs, err)
		}
		rs, total, err := st.Results(ctx, store.ResultFilter{Query: packs.QueryHits, Limit: 10})
		if err != nil || total != 2 {
			t.Errorf("results: %d %v", total, err)
		}
		_ = rs

		if code, out := f.api("POST", "/api/v1/hunts", map[string]any{"sql": "SELECT '\x00';", "targets": "all"}); code != 400 {
			t.Errorf("hunt with a NUL in its SQL: %d %v, want 400", code, out)
		}
		code, hunt := f.api("POST", "/api/v1/hunts", map[string]any{"sql": "SELECT 1 AS one;", "targets": "all"})
		if code != 201 {
			t.Fatalf("hunt: %d %v", code, hunt)
		}
		id := hunt["id"].(string)
		if code, out := f.osquery("distributed/read", map[string]any{"node_key": key}); code != 200 {
			t.Fatalf("read: %d %v", code, out)
		}
		code, out = f.osquery("distributed/write", map[string]any{"node_key": key,
			"queries": map[string]any{id: "", "x\x00": []any{}}, "statuses": map[string]any{id: 1}, "messages": map[string]any{id: "no\x00table"}})
		if code != 200 {
			t.Fatalf("distributed write with NULs: %d %v", code, out)
		}
		hh, err := st.HuntHosts(ctx, id)
		if err != nil || len(hh) == 0 {
			t.Fatalf("hunt hosts: %v %v", hh, err)
		}
		for _, x := range hh {
			if x.HostID == h.ID && x.Message != `no\x00table` {
				t.Errorf("hunt answer message %q", x.Message)
			}
		}
		if code, out := f.api("GET", "/api/v1/hunts/a%00b", nil); code != 400 {
			t.Errorf("hunt ID with a NUL: %d %v, want 400", code, out)
		}
		if code, out := f.api("GET", "/api/v1/detections?host=a%00b", nil); code != 400 {
			t.Errorf("host filter with a NUL: %d %v, want 400", code, out)
		}
		if code, out := f.do("PUT", "/api/v1/packs/p", []byte(`{"queries":{"q":{"query":"SELECT 1;","interval":60,"description":"a`+"\x00"+`"}}}`),
			map[string]string{"Authorization": "Bearer " + f.token}); code != 400 {
			t.Errorf("pack with a NUL: %d %v, want 400", code, out)
		}
		if code, out := f.osquery("config", map[string]any{"node_key": "a\x00b"}); code != 401 {
			t.Errorf("node key with a NUL: %d %v, want 401", code, out)
		}
	})
}

// TestTokenListAndRevoke: the analyst API lists tokens (never the token
// or its hash) and revokes one by ID; a revoked token stops working.
func TestTokenListAndRevoke(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		other, err := CreateToken(context.Background(), st, "other")
		if err != nil {
			t.Fatal(err)
		}
		code, out := f.api("GET", "/api/v1/tokens", nil)
		toks, _ := out["tokens"].([]any)
		if code != 200 || len(toks) != 2 {
			t.Fatalf("list: %d %v", code, out)
		}
		var id string
		for _, x := range toks {
			tok := x.(map[string]any)
			if tok["name"] == "other" {
				id = tok["id"].(string)
			}
		}
		if id != HashToken(other)[:store.TokenIDLength] {
			t.Fatalf("other's ID %q", id)
		}
		if code, out := f.api("DELETE", "/api/v1/tokens/"+id, nil); code != 204 {
			t.Fatalf("revoke: %d %v", code, out)
		}
		if code, _ := f.do("GET", "/api/v1/hosts", nil, map[string]string{"Authorization": "Bearer " + other}); code != 401 {
			t.Errorf("revoked token: %d, want 401", code)
		}
		if code, _ := f.api("DELETE", "/api/v1/tokens/"+id, nil); code != 404 {
			t.Errorf("revoke again: %d, want 404", code)
		}
		if code, _ := f.api("GET", "/api/v1/hosts", nil); code != 200 {
			t.Errorf("the other token: %d, want 200", code)
		}
	})
}

// TestResultNameForms: rows osquery logged as pack/<pack>/<query> (its
// pack_delimiter set to "/") are found under pack_<pack>_<query> too, and
// the other way round.
func TestResultNameForms(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		key := f.enroll("host-a", "ubuntu")
		now := time.Now()
		for i, name := range []string{"pack/" + packs.Name + "/" + packs.QueryHits, "pack_" + packs.Name + "_" + packs.QueryHits} {
			item := resultItem(packs.QueryHits, now, i+1, []any{hitRow(fmt.Sprint("hit-", i), "T1059.004", "execution", "high", now)}, nil)
			item["name"] = name
			if code, out := f.osquery("log", map[string]any{"node_key": key, "log_type": "result", "data": []any{item}}); code != 200 {
				t.Fatalf("log: %d %v", code, out)
			}
		}
		for _, name := range []string{"pack_" + packs.Name + "_" + packs.QueryHits, "pack%2F" + packs.Name + "%2F" + packs.QueryHits, packs.QueryHits} {
			code, out := f.api("GET", "/api/v1/queries/"+name+"/results", nil)
			if code != 200 || out["total"] != float64(2) {
				t.Errorf("%s: %d total %v, want both rows", name, code, out["total"])
			}
		}
	})
}

// TestClaimedHostname: a host that claims another's hostname gets none of
// its hunts and does not show in its detections: hunt targets and the host
// filter match the identifier a host enrolled with (hostname only when
// asked for with hostname=).
func TestClaimedHostname(t *testing.T) {
	f := newFixture(t, openSQLite(t))
	if code, out := f.osquery("enroll", enrollBody("ws-1", "ws-1", "ubuntu", testSecret)); code != 200 {
		t.Fatalf("enroll: %d %v", code, out)
	}
	code, out := f.osquery("enroll", enrollBody("rogue", "ws-1", "ubuntu", testSecret)) // claims ws-1's hostname
	if code != 200 {
		t.Fatalf("enroll: %d %v", code, out)
	}
	rogue := out["node_key"].(string)
	code, h := f.api("POST", "/api/v1/hunts", map[string]any{"sql": "SELECT 1;", "targets": map[string]any{"hosts": []string{"ws-1"}}})
	if code != 201 {
		t.Fatalf("hunt: %d %v", code, h)
	}
	if _, rd := f.osquery("distributed/read", map[string]any{"node_key": rogue}); len(huntQueries(rd)) != 0 {
		t.Errorf("the host claiming ws-1's hostname got its hunt: %v", rd)
	}
	now := time.Now()
	f.osquery("log", map[string]any{"node_key": rogue, "log_type": "result", "data": []any{
		resultItem(packs.QueryHits, now, 1, []any{hitRow("hit-1", "T1059.004", "execution", "high", now)}, nil)}})
	if _, out := f.api("GET", "/api/v1/detections?host=ws-1", nil); out["total"] != float64(0) {
		t.Errorf("host=ws-1 shows the rogue host's detections: %v", out)
	}
	if _, out := f.api("GET", "/api/v1/detections?hostname=ws-1", nil); out["total"] != float64(1) {
		t.Errorf("hostname=ws-1 (asked for): %v, want the rogue's detection", out)
	}
}
