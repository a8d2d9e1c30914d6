package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/fleet/store/pgstore"
	"github.com/quarry-sec/quarry/internal/pgtest"
)

// cutProxy forwards loopback TCP connections to a database; cut closes
// them all and refuses new ones until restore.
type cutProxy struct {
	t      *testing.T
	target func() (net.Conn, error)
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]bool
}

func newCutProxy(t *testing.T, target func() (net.Conn, error)) *cutProxy {
	p := &cutProxy{t: t, target: target, conns: map[net.Conn]bool{}}
	p.listen("127.0.0.1:0")
	t.Cleanup(p.cut)
	return p
}

func (p *cutProxy) listen(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := p.target()
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[up] = true, true
			p.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
}

func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]bool{}
}

func (p *cutProxy) restore() { p.listen(p.addr) }

// TestDatabaseOutage: while PostgreSQL cannot be reached, osquery and
// analyst requests are answered 503 with Retry-After (not 500), the outage
// is reported once, not once per request, its end is reported when the
// database answers again, and last-seen times written meanwhile are not
// lost.
func TestDatabaseOutage(t *testing.T) {
	dsn := os.Getenv("QUARRY_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("PostgreSQL outage test skipped: QUARRY_TEST_POSTGRES is not set (.ci/run sets it)")
	}
	dsn = pgtest.Schema(t, dsn)
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	target := func() (net.Conn, error) {
		if strings.HasPrefix(cfg.Host, "/") {
			return net.Dial("unix", filepath.Join(cfg.Host, fmt.Sprintf(".s.PGSQL.%d", cfg.Port)))
		}
		return net.Dial("tcp", net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port)))
	}
	proxy := newCutProxy(t, target)
	host, port, _ := net.SplitHostPort(proxy.addr)
	pdsn := fmt.Sprintf("host=%s port=%s user=%s dbname=%s sslmode=disable search_path=%s connect_timeout=5",
		host, port, cfg.User, cfg.Database, cfg.RuntimeParams["search_path"])
	if cfg.Password != "" {
		pdsn += " password=" + cfg.Password
	}
	st, err := pgstore.Open(context.Background(), pdsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var mu sync.Mutex
	var reqErrs, bgErrs []error
	var recovered int
	f := newFixture(t, st, func(c *Config) {
		c.NodeCacheTTL = time.Hour // a cached key passes during the outage
		c.OnError = func(_ *http.Request, err error) { mu.Lock(); reqErrs = append(reqErrs, err); mu.Unlock() }
		c.OnBackgroundError = func(err error) { mu.Lock(); bgErrs = append(bgErrs, err); mu.Unlock() }
		c.OnRecovered = func(time.Duration) { mu.Lock(); recovered++; mu.Unlock() }
	})
	key := f.enroll("host-a", "ubuntu")
	if code, out := f.osquery("config", map[string]any{"node_key": key}); code != 200 { // the key is cached now
		t.Fatalf("config: %d %v", code, out)
	}

	proxy.cut()
	var lastLog time.Time
	for i := range 5 {
		for _, req := range []func() (int, map[string]any){
			func() (int, map[string]any) {
				return f.osquery("enroll", enrollBody(fmt.Sprint("host-", i), "b", "ubuntu", testSecret))
			},
			func() (int, map[string]any) {
				// The cached key passes; its last-seen time is queued,
				// its write fails, the log's too.
				lastLog = f.clock.Now()
				return f.osquery("log", map[string]any{"node_key": key, "log_type": "status", "data": []any{
					map[string]any{"unixTime": 1, "severity": 0, "filename": "f", "line": 1, "message": "m", "version": "5"}}})
			},
			func() (int, map[string]any) { return f.api("GET", "/api/v1/hosts", nil) },
		} {
			f.clock.Add(f.srv.touchEvery()/2 + time.Second) // a last-seen write is due at each log request (every third)
			resp := f.lastResponse(req)
			if resp.code != http.StatusServiceUnavailable || resp.retryAfter == "" {
				t.Fatalf("during the outage: %d Retry-After %q %v, want 503 with Retry-After", resp.code, resp.retryAfter, resp.body)
			}
		}
	}
	mu.Lock()
	if len(reqErrs)+len(bgErrs) != 1 {
		t.Errorf("outage reported %d times (requests %v, background %v), want once", len(reqErrs)+len(bgErrs), reqErrs, bgErrs)
	}
	mu.Unlock()

	proxy.restore()
	var code int
	for range 50 { // the pool may hand out a dead connection once more
		if code, _ = f.api("GET", "/api/v1/hosts", nil); code == 200 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code != 200 {
		t.Fatalf("after the outage: %d", code)
	}
	mu.Lock()
	if recovered != 1 {
		t.Errorf("recovery reported %d times, want 1", recovered)
	}
	reqErrs, bgErrs = nil, nil
	mu.Unlock()
	// The last-seen time queued during the outage reaches the database
	// with the next write (this request's own time is not due yet).
	f.clock.Add(time.Second)
	if code, out := f.osquery("config", map[string]any{"node_key": key}); code != 200 {
		t.Fatalf("config: %d %v", code, out)
	}
	h, err := st.HostByNodeKey(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	if !h.LastSeen.Equal(lastLog) {
		t.Errorf("last seen %v, want %v (queued during the outage)", h.LastSeen, lastLog)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, err := range append(reqErrs, bgErrs...) {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("after the outage: %v", err)
		}
	}
}

// response is a status, Retry-After and body.
type response struct {
	code       int
	retryAfter string
	body       map[string]any
}

// lastResponse runs a fixture request and returns its status, body and
// the Retry-After header the server sent.
func (f *fixture) lastResponse(req func() (int, map[string]any)) response {
	f.mu.Lock()
	f.lastHeader = nil
	f.mu.Unlock()
	code, body := req()
	f.mu.Lock()
	defer f.mu.Unlock()
	return response{code: code, retryAfter: f.lastHeader.Get("Retry-After"), body: body}
}

// TestUnavailable: which errors mean the database is unavailable.
func TestUnavailable(t *testing.T) {
	if store.Unavailable(nil) || store.Unavailable(store.ErrNotFound) || store.Unavailable(errors.New("syntax error")) {
		t.Error("ordinary errors classed as unavailable")
	}
	if !store.Unavailable(fmt.Errorf("x: %w", &net.OpError{Op: "dial", Err: errors.New("refused")})) ||
		!store.Unavailable(fmt.Errorf("x: %w", context.DeadlineExceeded)) {
		t.Error("connection errors not classed as unavailable")
	}
}
