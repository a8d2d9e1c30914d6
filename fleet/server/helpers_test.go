package server

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/fleet/store/sqlitestore"
)

const testSecret = "s3cret-enroll"

// clock is a settable clock for Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fixture is a server on a fresh SQLite store, behind a real HTTP listener.
type fixture struct {
	t     *testing.T
	st    store.Store
	srv   *Server
	http  *httptest.Server
	clock *clock
	token string
	errs  []error
	mu    sync.Mutex
	// lastHeader is the header of the last answer.
	lastHeader http.Header
}

func kb(t *testing.T) *attack.KB {
	t.Helper()
	k, err := attack.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func openSQLite(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), sqlitestore.FileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newFixture(t *testing.T, st store.Store, mod ...func(*Config)) *fixture {
	t.Helper()
	f := &fixture{t: t, st: st, clock: &clock{t: time.Now().Truncate(time.Second)}}
	cfg := Config{Store: st, KB: kb(t), EnrollSecret: testSecret, Version: "test", Now: f.clock.Now,
		OnError: func(_ *http.Request, err error) { f.mu.Lock(); f.errs = append(f.errs, err); f.mu.Unlock() }}
	for _, m := range mod {
		m(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	f.http = httptest.NewServer(srv.Handler())
	t.Cleanup(f.http.Close)
	tok, err := CreateToken(context.Background(), st, "test")
	if err != nil {
		t.Fatal(err)
	}
	f.token = tok
	t.Cleanup(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, err := range f.errs {
			t.Errorf("server error: %v", err)
		}
	})
	return f
}

// do sends a request and decodes a JSON answer into a map (nil if none).
func (f *fixture) do(method, path string, body []byte, hdr map[string]string) (int, map[string]any) {
	f.t.Helper()
	req, err := http.NewRequest(method, f.http.URL+path, bytes.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	f.mu.Lock()
	f.lastHeader = resp.Header
	f.mu.Unlock()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, &out); err != nil {
			f.t.Fatalf("%s %s: answer is not JSON: %q", method, path, data)
		}
	}
	return resp.StatusCode, out
}

// osquery posts JSON as osqueryd does (application/json, POST).
func (f *fixture) osquery(path string, body any) (int, map[string]any) {
	f.t.Helper()
	return f.do("POST", "/api/v1/osquery/"+path, mustJSON(f.t, body), map[string]string{
		"Content-Type": "application/json", "Accept": "application/json", "User-Agent": "osquery/5.12.1"})
}

// api calls the analyst API with the fixture's token.
func (f *fixture) api(method, path string, body any) (int, map[string]any) {
	f.t.Helper()
	var data []byte
	if body != nil {
		data = mustJSON(f.t, body)
	}
	return f.do(method, path, data, map[string]string{"Authorization": "Bearer " + f.token})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	if b, ok := v.([]byte); ok {
		return b
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gz(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(data)
	zw.Close()
	return buf.Bytes()
}

// enrollBody is an enroll request as osqueryd 5.x sends it.
func enrollBody(ident, hostname, platform, secret string) map[string]any {
	return map[string]any{
		"enroll_secret":   secret,
		"host_identifier": ident,
		"platform_type":   "9",
		"host_details": map[string]any{
			"os_version": map[string]any{"build": "", "codename": "noble", "major": "24", "minor": "4",
				"name": "Ubuntu", "patch": "0", "platform": platform, "platform_like": "debian", "version": "24.04.1 LTS (Noble Numbat)"},
			"osquery_info": map[string]any{"build_distro": "centos7", "build_platform": "linux", "config_hash": "",
				"config_valid": "0", "extensions": "active", "instance_id": "b2f1c4c8", "pid": "1234",
				"start_time": "1767225600", "uuid": ident, "version": "5.12.1", "watcher": "1233"},
			"system_info": map[string]any{"computer_name": hostname, "cpu_brand": "Intel", "hardware_model": "",
				"hostname": hostname, "local_hostname": hostname, "physical_memory": "8589934592", "uuid": ident},
			"platform_info": map[string]any{"vendor": "SeaBIOS"},
		},
	}
}

// enroll enrolls a host and returns its node key.
func (f *fixture) enroll(ident, platform string) string {
	f.t.Helper()
	code, out := f.osquery("enroll", enrollBody(ident, ident+".example", platform, testSecret))
	key, _ := out["node_key"].(string)
	if code != 200 || key == "" || out["node_invalid"] != false {
		f.t.Fatalf("enroll %s: %d %v", ident, code, out)
	}
	return key
}

// storeAll selects every detection.
func storeAll() store.DetectionFilter { return store.DetectionFilter{Limit: 10000} }

// huntQueries returns a distributed read's queries without the schema
// probe (SchemaProbeID), which comes along until the host answers it.
func huntQueries(rd map[string]any) map[string]any {
	out := map[string]any{}
	for id, q := range rd["queries"].(map[string]any) {
		if id != SchemaProbeID {
			out[id] = q
		}
	}
	return out
}
