package agent

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"github.com/quarry-sec/quarry/fleet/osqwire"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// fakeFleet is a minimal osquery TLS API server for the agent's tests.
type fakeFleet struct {
	t      *testing.T
	secret string

	mu        sync.Mutex
	down      bool // drop every connection, as an unreachable server
	keys      map[string]bool
	enrolls   int
	config    osqwire.ConfigResponse
	results   []osqwire.ResultLog[Row]
	statuses  []osqwire.StatusLog
	live      map[string]string
	writes    []osqwire.DistributedWriteRequest[[]Row]
	enrollReq []osqwire.EnrollRequest
}

func newFakeFleet(t *testing.T, secret string) (*fakeFleet, *httptest.Server) {
	f := &fakeFleet{t: t, secret: secret, keys: map[string]bool{}, live: map[string]string{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeFleet) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		hj, ok := w.(http.Hijacker)
		if !ok {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		conn, _, err := hj.Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	var body map[string]json.RawMessage
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	reply := func(v any) { _ = json.NewEncoder(w).Encode(v) }
	if r.URL.Path == osqwire.PathEnroll {
		var req osqwire.EnrollRequest
		raw, _ := json.Marshal(body)
		_ = json.Unmarshal(raw, &req)
		f.enrollReq = append(f.enrollReq, req)
		if req.EnrollSecret != f.secret {
			w.WriteHeader(http.StatusUnauthorized)
			reply(map[string]any{"node_invalid": true})
			return
		}
		f.enrolls++
		key := fmt.Sprintf("key-%d", f.enrolls)
		f.keys[key] = true
		reply(osqwire.EnrollResponse{NodeKey: key})
		return
	}
	var key string
	_ = json.Unmarshal(body["node_key"], &key)
	if !f.keys[key] {
		reply(map[string]any{"node_invalid": true})
		return
	}
	switch r.URL.Path {
	case osqwire.PathConfig:
		reply(f.config)
	case osqwire.PathLog:
		var typ string
		var data []json.RawMessage
		_ = json.Unmarshal(body["log_type"], &typ)
		_ = json.Unmarshal(body["data"], &data)
		for _, d := range data {
			if typ == osqwire.LogResult {
				var l osqwire.ResultLog[Row]
				if err := json.Unmarshal(d, &l); err != nil {
					f.t.Errorf("result log: %v", err)
				}
				f.results = append(f.results, l)
			} else {
				var l osqwire.StatusLog
				_ = json.Unmarshal(d, &l)
				f.statuses = append(f.statuses, l)
			}
		}
		reply(osqwire.NodeResponse{})
	case osqwire.PathDistributedRead:
		reply(osqwire.DistributedReadResponse{Queries: f.live})
		f.live = map[string]string{}
	case osqwire.PathDistWrite:
		var req osqwire.DistributedWriteRequest[[]Row]
		raw, _ := json.Marshal(body)
		_ = json.Unmarshal(raw, &req)
		f.writes = append(f.writes, req)
		reply(osqwire.NodeResponse{})
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeFleet) setDown(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

// invalidate forgets every node key, as a server that lost its hosts.
func (f *fakeFleet) invalidate() {
	f.mu.Lock()
	f.keys = map[string]bool{}
	f.mu.Unlock()
}

func (f *fakeFleet) snapshot() (results []osqwire.ResultLog[Row], statuses []osqwire.StatusLog, writes []osqwire.DistributedWriteRequest[[]Row], enrolls int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]osqwire.ResultLog[Row](nil), f.results...), append([]osqwire.StatusLog(nil), f.statuses...),
		append([]osqwire.DistributedWriteRequest[[]Row](nil), f.writes...), f.enrolls
}

// sqlQuerier adapts a *sql.DB to Querier.
type sqlQuerier struct{ db *sql.DB }

func (q sqlQuerier) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return q.db.QueryContext(ctx, query, args...)
}

// hitsDB is a SQLite database with a hits table the tests add rows to.
func hitsDB(t *testing.T) *sql.DB {
	db, err := sql.Open("sqlite", "file:"+t.TempDir()+"/hits.db?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec("CREATE TABLE hits (hit_id TEXT, n INTEGER)"); err != nil {
		t.Fatal(err)
	}
	return db
}
