package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/detections/packs"
	"github.com/quarry-sec/quarry/fleet/store/sqlitestore"
)

// TestConcurrentLogsGroupCommit: many hosts logging at once (the store
// group-commits their requests) all get 200 and every hit is stored once.
func TestConcurrentLogsGroupCommit(t *testing.T) {
	f := newFixture(t, openSQLite(t))
	const hosts, logsEach = 20, 10
	keys := make([]string, hosts)
	for i := range keys {
		keys[i] = f.enroll(fmt.Sprintf("host-%d", i), "ubuntu")
	}
	now := f.clock.Now()
	var wg sync.WaitGroup
	errs := make(chan error, hosts*logsEach)
	for i, key := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < logsEach; j++ {
				row := hitRow(fmt.Sprintf("hit-%d-%d", i, j), "T1059.004", "execution", "high", now)
				body := map[string]any{"node_key": key, "log_type": "result", "data": []any{map[string]any{
					"name": "pack_" + packs.Name + "_" + packs.QueryHits, "unixTime": now.Unix(), "columns": row, "action": "added"}}}
				if code, _ := f.osquery("log", body); code != 200 {
					errs <- fmt.Errorf("host %d log %d: status %d", i, j, code)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	_, n, err := f.st.Detections(t.Context(), storeAll())
	if err != nil {
		t.Fatal(err)
	}
	if n != hosts*logsEach {
		t.Fatalf("%d detections stored, want %d", n, hosts*logsEach)
	}
}

// BenchmarkConcurrentLogs posts log requests (two hit rows each) from 64
// hosts at once, as a fleet does, through the server to SQLite: the
// store's group commit writes the requests that wait together.
func BenchmarkConcurrentLogs(b *testing.B) {
	st, err := sqlitestore.Open(context.Background(), filepath.Join(b.TempDir(), sqlitestore.FileName))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	k, err := attack.Embedded()
	if err != nil {
		b.Fatal(err)
	}
	srv, err := New(Config{Store: st, KB: k, EnrollSecret: testSecret, Version: "test",
		OnError: func(_ *http.Request, err error) { b.Error(err) }})
	if err != nil {
		b.Fatal(err)
	}
	h := srv.Handler()
	post := func(path string, body any) (int, []byte) {
		data, _ := json.Marshal(body)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/osquery/"+path, bytes.NewReader(data)))
		return rec.Code, rec.Body.Bytes()
	}
	const hosts = 64
	keys := make(chan string, hosts)
	for i := range hosts {
		code, out := post("enroll", enrollBody(fmt.Sprintf("host-%d", i), "h", "ubuntu", testSecret))
		var resp struct {
			NodeKey string `json:"node_key"`
		}
		if json.Unmarshal(out, &resp); code != 200 || resp.NodeKey == "" {
			b.Fatalf("enroll: %d %s", code, out)
		}
		keys <- resp.NodeKey
	}
	now := time.Now()
	var seq atomic.Int64
	b.SetParallelism((hosts + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		key := <-keys
		for pb.Next() {
			n := seq.Add(1)
			rows := []any{hitRow(fmt.Sprintf("hit-%d-a", n), "T1059.004", "execution", "high", now),
				hitRow(fmt.Sprintf("hit-%d-b", n), "T1105", "command-and-control", "medium", now)}
			body := map[string]any{"node_key": key, "log_type": "result", "data": []any{map[string]any{
				"name": "pack_" + packs.Name + "_" + packs.QueryHits, "unixTime": now.Unix(), "counter": n,
				"diffResults": map[string]any{"added": rows, "removed": []any{}}}}}
			if code, out := post("log", body); code != 200 {
				b.Errorf("log: %d %s", code, out)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "requests/s")
}
