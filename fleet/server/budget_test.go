package server

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestBodyBytesInFlight: unauthenticated osquery bodies (node keys are in
// the body, so it is read before any check) share one budget of bytes in
// flight: 16 gzip bombs of 3 MiB each, held open at once, never hold more
// than the budget; those that cannot get bytes are answered 503 with
// Retry-After; afterwards the budget is whole again and requests pass.
// An enroll body has a smaller limit of its own.
func TestBodyBytesInFlight(t *testing.T) {
	const budget = 8 << 20
	f := newFixture(t, openSQLite(t), func(c *Config) { c.MaxBodyBytesInFlight = budget })
	key := f.enroll("host-a", "ubuntu")

	// 3 MiB of zeros, gzipped (a few KiB): each request sends it, then
	// holds its body open until release is closed.
	var bomb bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	zw.Write(make([]byte, 3<<20))
	zw.Flush()
	release := make(chan struct{})
	const n = 16
	type answer struct {
		code       int
		retryAfter string
	}
	answers := make(chan answer, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pr, pw := io.Pipe()
			go func() {
				pw.Write(bomb.Bytes())
				<-release
				pw.Close()
			}()
			req, _ := http.NewRequest("POST", f.http.URL+"/api/v1/osquery/log", pr)
			req.Header.Set("Content-Encoding", "gzip")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			answers <- answer{resp.StatusCode, resp.Header.Get("Retry-After")}
		}()
	}
	// Wait until the budget is taken (or 3 s pass), then let them finish.
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); {
		f.srv.bodies.mu.Lock()
		used := f.srv.bodies.used
		f.srv.bodies.mu.Unlock()
		if used >= budget-(3<<20) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	close(release)
	wg.Wait()
	close(answers)
	busy := 0
	for a := range answers {
		switch {
		case a.code == http.StatusServiceUnavailable && a.retryAfter != "":
			busy++
		case a.code != http.StatusBadRequest: // zeros are not JSON
			t.Errorf("bomb answered %d (Retry-After %q)", a.code, a.retryAfter)
		}
	}
	f.srv.bodies.mu.Lock()
	peak, used := f.srv.bodies.peak, f.srv.bodies.used
	f.srv.bodies.mu.Unlock()
	if peak > budget {
		t.Errorf("%d bytes of bodies held at once, budget %d", peak, budget)
	}
	if used != 0 {
		t.Errorf("%d bytes still charged after every request ended", used)
	}
	if busy == 0 {
		t.Error("no bomb was turned away with 503 and Retry-After")
	}
	if code, out := f.osquery("config", map[string]any{"node_key": key}); code != 200 {
		t.Errorf("config after the bombs: %d %v", code, out)
	}
	// Enroll: 1 MiB at most by default.
	big := enrollBody("host-b", "b", "ubuntu", testSecret)
	big["pad"] = string(bytes.Repeat([]byte("x"), 2<<20))
	if code, out := f.osquery("enroll", big); code != http.StatusRequestEntityTooLarge {
		t.Errorf("2 MiB enroll: %d %v, want 413", code, out)
	}
}

// A small body of known length is charged its size, not a whole read
// chunk; one of unknown length (or gzipped) still a chunk.
func TestSmallBodyChargedItsSize(t *testing.T) {
	const body = `{"node_key":"k"}`
	for _, tc := range []struct {
		name   string
		length int64
		want   int64
	}{
		{"known length", int64(len(body)), int64(len(body)) + 1},
		{"unknown length", -1, bodyChunk},
	} {
		b := newByteBudget(1 << 20)
		r := httptest.NewRequest(http.MethodPost, "/api/v1/osquery/config", strings.NewReader(body))
		r.ContentLength = tc.length
		data, release, err := readBodyIn(httptest.NewRecorder(), r, 1<<20, b)
		if err != nil || string(data) != body {
			t.Fatalf("%s: %q, %v", tc.name, data, err)
		}
		if b.peak != tc.want {
			t.Errorf("%s: charged %d bytes, want %d", tc.name, b.peak, tc.want)
		}
		release()
		if b.used != 0 {
			t.Errorf("%s: %d bytes held after release", tc.name, b.used)
		}
	}
}
