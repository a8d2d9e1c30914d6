package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/fleet/store/pgstore"
	"github.com/quarry-sec/quarry/internal/pgtest"
)

// TestHAProxyReplicas runs two fleet servers on one PostgreSQL database
// behind HAProxy (deploy/haproxy.cfg, round robin) on loopback addresses:
// enrollment, the schema probe, hunts (made through one replica, taken
// and answered through whichever) and logs work whichever replica a
// request lands on, and when one replica is killed mid-load no log the
// fleet acknowledged is lost.
func TestHAProxyReplicas(t *testing.T) {
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		t.Skip("HAProxy test skipped: haproxy is not installed (apt-get install haproxy; .ci/run installs it)")
	}
	dsn := os.Getenv("QUARRY_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("HAProxy test skipped: QUARRY_TEST_POSTGRES is not set (.ci/run sets it)")
	}
	dsn = pgtest.Schema(t, dsn)
	ctx := context.Background()
	var replicas [2]*httptest.Server
	var stores [2]store.Store
	for i := range replicas {
		st, err := pgstore.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		stores[i] = st
		srv, err := New(Config{Store: st, KB: kb(t), EnrollSecret: testSecret, Version: "test",
			OnError: func(r *http.Request, err error) { t.Logf("replica %d: %s: %v", i+1, r.URL.Path, err) }})
		if err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithCancel(ctx)
		watched := make(chan struct{})
		go func() { defer close(watched); srv.Watch(wctx) }()
		t.Cleanup(func() { cancel(); <-watched })
		replicas[i] = httptest.NewServer(srv.Handler())
		t.Cleanup(replicas[i].Close)
	}
	token, err := CreateToken(ctx, stores[0], "lb")
	if err != nil {
		t.Fatal(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lbAddr := ln.Addr().String()
	ln.Close()
	_, file, _, _ := runtime.Caller(0)
	cfg := filepath.Join(filepath.Dir(file), "..", "..", "deploy", "haproxy.cfg")
	cmd := exec.Command(haproxy, "-db", "-f", cfg)
	cmd.Env = append(os.Environ(), "QUARRY_LB_BIND="+lbAddr,
		"QUARRY_FLEET1="+replicas[0].Listener.Addr().String(), "QUARRY_FLEET2="+replicas[1].Listener.Addr().String())
	var hout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &hout, &hout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("haproxy:\n%s", hout.String())
		}
	})
	lb := "http://" + lbAddr
	client := &http.Client{Timeout: 30 * time.Second}
	post := func(path string, body any, hdr ...string) (int, map[string]any, error) {
		data, _ := json.Marshal(body)
		method := "POST"
		if body == nil {
			method, data = "GET", nil
		}
		req, _ := http.NewRequest(method, lb+path, bytes.NewReader(data))
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var out map[string]any
		json.Unmarshal(raw, &out)
		return resp.StatusCode, out, nil
	}
	must := func(path string, body any, hdr ...string) map[string]any {
		t.Helper()
		code, out, err := post(path, body, hdr...)
		if err != nil || code/100 != 2 {
			t.Fatalf("%s: %d %v %v", path, code, out, err)
		}
		return out
	}
	for deadline := time.Now().Add(10 * time.Second); ; { // HAProxy up, both replicas checked
		if code, _, err := post("/healthz", nil); err == nil && code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("HAProxy did not answer on %s:\n%s", lbAddr, hout.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second) // both servers' first health checks

	key := must("/api/v1/osquery/enroll", enrollBody("host-a", "host-a", "ubuntu", testSecret))["node_key"].(string)
	for range 4 { // the key works on both replicas
		must("/api/v1/osquery/config", map[string]any{"node_key": key})
	}
	// The schema probe: answered once (through one replica), asked no more
	// by either.
	rd := must("/api/v1/osquery/distributed/read", map[string]any{"node_key": key})
	if rd["queries"].(map[string]any)[SchemaProbeID] == nil {
		t.Fatalf("no schema probe: %v", rd)
	}
	must("/api/v1/osquery/distributed/write", map[string]any{"node_key": key,
		"queries": map[string]any{SchemaProbeID: osquerySchemaRows}, "statuses": map[string]any{SchemaProbeID: 0}})
	// A hunt made through the balancer reaches the host through either
	// replica, once; its answer shows through either.
	hunt := must("/api/v1/hunts", map[string]any{"sql": "SELECT 42 AS answer;", "targets": "all"}, "Authorization", "Bearer "+token)
	id := hunt["id"].(string)
	got := 0
	for range 4 {
		rd := must("/api/v1/osquery/distributed/read", map[string]any{"node_key": key})
		qs := rd["queries"].(map[string]any)
		if qs[SchemaProbeID] != nil {
			t.Errorf("schema probe asked again after it was answered: %v", rd)
		}
		if qs[id] != nil {
			got++
		}
	}
	if got != 1 {
		t.Fatalf("the hunt was handed out %d times in 4 reads, want 1", got)
	}
	must("/api/v1/osquery/distributed/write", map[string]any{"node_key": key,
		"queries": map[string]any{id: []any{map[string]string{"answer": "42"}}}, "statuses": map[string]any{id: 0}})
	for range 2 {
		h := must("/api/v1/hunts/"+id, nil, "Authorization", "Bearer "+token)
		if h["rows_total"] != float64(1) {
			t.Errorf("hunt through the balancer: %v", h)
		}
	}

	// Logs under load, one replica killed midway: every log request is
	// sent until acknowledged (as osquery does); every acknowledged row
	// must be stored, once.
	const total = 120
	var acked atomic.Int64
	done := make(chan error, 1)
	go func() {
		for i := range total {
			item := map[string]any{"name": "lb_load", "unixTime": time.Now().Unix(), "epoch": 1, "counter": i,
				"snapshot": []any{map[string]string{"i": fmt.Sprint(i)}}}
			for attempt := 0; ; attempt++ {
				code, _, err := post("/api/v1/osquery/log", map[string]any{"node_key": key, "log_type": "result", "data": []any{item}})
				if err == nil && code == 200 {
					acked.Add(1)
					break
				}
				if attempt > 50 {
					done <- fmt.Errorf("log %d never acknowledged: %d %v", i, code, err)
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		done <- nil
	}()
	for acked.Load() < total/3 {
		time.Sleep(5 * time.Millisecond)
	}
	replicas[1].Config.Close() // killed: listener and connections closed at once
	replicas[1].Listener.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_, n, err := stores[0].Results(ctx, store.ResultFilter{Query: "lb_load", Limit: 1})
	if err != nil || n != total {
		t.Fatalf("%d rows stored of %d acknowledged (%v)", n, acked.Load(), err)
	}
}

// TestHAProxyFailsOpen: when every replica fails its health check at once
// (busy, not dead: under load /healthz answered too late on both), HAProxy
// as deploy/haproxy.cfg sets it up still sends requests to them instead
// of answering every one 503 "No server is available".
func TestHAProxyFailsOpen(t *testing.T) {
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		t.Skip("HAProxy test skipped: haproxy is not installed (apt-get install haproxy; .ci/run installs it)")
	}
	var replicas [2]*httptest.Server
	for i := range replicas {
		srv, err := New(Config{Store: openSQLite(t), KB: kb(t), EnrollSecret: testSecret, Version: "test"})
		if err != nil {
			t.Fatal(err)
		}
		h := srv.Handler()
		replicas[i] = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/healthz" { // every check fails
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			h.ServeHTTP(w, r)
		}))
		t.Cleanup(replicas[i].Close)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lbAddr := ln.Addr().String()
	ln.Close()
	_, file, _, _ := runtime.Caller(0)
	cmd := exec.Command(haproxy, "-db", "-f", filepath.Join(filepath.Dir(file), "..", "..", "deploy", "haproxy.cfg"))
	cmd.Env = append(os.Environ(), "QUARRY_LB_BIND="+lbAddr,
		"QUARRY_FLEET1="+replicas[0].Listener.Addr().String(), "QUARRY_FLEET2="+replicas[1].Listener.Addr().String())
	var hout lockedBuffer // HAProxy writes it while the test reads it
	cmd.Stdout, cmd.Stderr = &hout, &hout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	get := func() (int, error) {
		resp, err := http.Get("http://" + lbAddr + "/version")
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	// Wait until HAProxy has marked both replicas DOWN (its log says so).
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(hout.String(), " 0 active and "); {
		if time.Now().After(deadline) {
			t.Fatalf("HAProxy did not mark both replicas down:\n%s", hout.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i := range 4 {
		if code, err := get(); err != nil || code != http.StatusOK {
			t.Fatalf("request %d with every check failing: %d %v, want 200 (fail open)\n%s", i, code, err, hout.String())
		}
	}
}

// lockedBuffer is a bytes.Buffer safe for one writer and readers at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
