package server

import (
	"bytes"
	"strings"
	"testing"
)

// TestBadInput sends what a broken or hostile client might, and checks the
// answers are 4xx, the server stays healthy and stored data stays.
func TestBadInput(t *testing.T) {
	f := newFixture(t, openSQLite(t), func(c *Config) { c.MaxBodyBytes = 64 << 10 })
	key := f.enroll("host-a", "ubuntu")
	good := map[string]any{"node_key": key, "log_type": "result", "data": []any{
		map[string]any{"name": "q", "unixTime": 1, "columns": map[string]string{"a": "1"}, "action": "added"}}}
	if code, _ := f.osquery("log", good); code != 200 {
		t.Fatal(code)
	}
	big := bytes.Repeat([]byte("x"), 65<<10)
	bigLog := []byte(`{"node_key":"` + key + `","log_type":"result","data":["` + string(big) + `"]}`)
	cases := []struct {
		name, path string
		body       []byte
		hdr        map[string]string
		want       int
		invalid    bool // answer says node_invalid
	}{
		{"enroll malformed", "enroll", []byte(`{"enroll_secret": `), nil, 400, true},
		{"enroll empty", "enroll", nil, nil, 400, true},
		{"enroll wrong secret", "enroll", mustJSON(t, enrollBody("x", "x", "ubuntu", "guess")), nil, 401, true},
		{"enroll no secret", "enroll", []byte(`{"host_identifier":"x"}`), nil, 401, true},
		{"enroll no identifier", "enroll", []byte(`{"enroll_secret":"` + testSecret + `"}`), nil, 400, true},
		{"config unknown key", "config", []byte(`{"node_key":"forged"}`), nil, 401, true},
		{"config no key", "config", []byte(`{}`), nil, 401, true},
		{"log unknown key", "log", []byte(`{"node_key":"forged","log_type":"result","data":[]}`), nil, 401, true},
		{"read unknown key header", "distributed/read", []byte(`{}`), map[string]string{"Authorization": "NodeKey forged"}, 401, true},
		{"log malformed", "log", []byte(`{"node_key":"` + key + `","log_type":"result","data":[{]}`), nil, 400, false},
		{"log not json", "log", []byte(`hello`), nil, 400, false},
		{"log unknown type", "log", []byte(`{"node_key":"` + key + `","log_type":"audit","data":[]}`), nil, 400, false},
		{"log oversize", "log", bigLog, nil, 413, false},
		{"log gzip oversize", "log", gz(t, bigLog), map[string]string{"Content-Encoding": "gzip"}, 413, false},
		{"log gzip broken", "log", []byte("not gzip at all"), map[string]string{"Content-Encoding": "gzip"}, 400, false},
		{"log other encoding", "log", []byte(`{}`), map[string]string{"Content-Encoding": "br"}, 415, false},
		{"write malformed", "distributed/write", []byte(`{"node_key":"` + key + `","queries":[}`), nil, 400, false},
	}
	for _, tc := range cases {
		code, out := f.do("POST", "/api/v1/osquery/"+tc.path, tc.body, tc.hdr)
		if code != tc.want {
			t.Errorf("%s: %d %v, want %d", tc.name, code, out, tc.want)
		}
		if tc.invalid && out["node_invalid"] != true {
			t.Errorf("%s: answer %v lacks node_invalid", tc.name, out)
		}
		if out["error"] == nil {
			t.Errorf("%s: answer %v lacks an error", tc.name, out)
		}
	}
	if code, _ := f.do("PUT", "/api/v1/packs/x", []byte(`{"queries":{"q":{"query":"SELECT 1"}}}`),
		map[string]string{"Authorization": "Bearer " + f.token}); code != 400 {
		t.Errorf("pack without interval: %d", code)
	}
	// Healthy, and nothing lost.
	if code, _ := f.do("GET", "/healthz", nil, nil); code != 200 {
		t.Fatalf("healthz: %d", code)
	}
	good["data"] = []any{map[string]any{"name": "q", "unixTime": 2, "columns": map[string]string{"a": "1"}, "action": "added"}}
	if code, _ := f.osquery("log", good); code != 200 {
		t.Fatalf("good log after bad ones: %d", code)
	}
	if _, res := f.api("GET", "/api/v1/queries/q/results", nil); res["total"] != float64(2) {
		t.Errorf("results after bad input: %v", res["total"])
	}
	if hosts, _ := f.st.Hosts(t.Context()); len(hosts) != 1 {
		t.Errorf("hosts after bad enrolls: %d", len(hosts))
	}
}

func TestPacksAPI(t *testing.T) {
	f := newFixture(t, openSQLite(t), func(c *Config) {
		c.FilePacks = map[string]Pack{}
		p, err := ParsePack([]byte(`{"platform":"darwin","queries":{"apps":{"query":"SELECT * FROM apps;","interval":3600}}}`))
		if err != nil {
			t.Fatal(err)
		}
		c.FilePacks["mac-apps"] = p
	})
	key := f.enroll("host-a", "ubuntu")
	pack := `{"queries":{"users":{"query":"SELECT * FROM users;","interval":600},"win":{"query":"SELECT 1;","interval":60,"platform":"windows"}}}`
	if code, _ := f.do("PUT", "/api/v1/packs/extra", []byte(pack), map[string]string{"Authorization": "Bearer " + f.token}); code != 200 {
		t.Fatal(code)
	}
	_, cfg := f.osquery("config", map[string]any{"node_key": key})
	ps := cfg["packs"].(map[string]any)
	if _, ok := ps["mac-apps"]; ok {
		t.Error("darwin pack sent to a linux host")
	}
	extra := ps["extra"].(map[string]any)["queries"].(map[string]any)
	if len(extra) != 1 || extra["users"] == nil {
		t.Errorf("extra pack = %v", extra)
	}
	// Configs are cached per platform family: a Mac gets its own.
	mac := f.enroll("host-mac", "darwin")
	_, macCfg := f.osquery("config", map[string]any{"node_key": mac})
	if _, ok := macCfg["packs"].(map[string]any)["mac-apps"]; !ok {
		t.Errorf("darwin pack not sent to a darwin host: %v", macCfg["packs"])
	}
	if _, again := f.osquery("config", map[string]any{"node_key": key}); again["packs"].(map[string]any)["mac-apps"] != nil {
		t.Error("darwin pack sent to a linux host from the config cache")
	}
	_, list := f.api("GET", "/api/v1/packs", nil)
	all := list["packs"].(map[string]any)
	if len(all) != 3 || all["mac-apps"].(map[string]any)["source"] != "file" || all["extra"].(map[string]any)["source"] != "api" {
		t.Errorf("packs = %v", all)
	}
	for _, name := range []string{"quarry-detections", "mac-apps"} {
		if code, _ := f.api("DELETE", "/api/v1/packs/"+name, nil); code != 409 {
			t.Errorf("delete %s: %d", name, code)
		}
	}
	if code, _ := f.api("DELETE", "/api/v1/packs/extra", nil); code != 204 {
		t.Errorf("delete extra: %d", code)
	}
	if code, _ := f.api("DELETE", "/api/v1/packs/extra", nil); code != 404 {
		t.Errorf("delete extra twice: %d", code)
	}
	_, cfg = f.osquery("config", map[string]any{"node_key": key})
	if _, ok := cfg["packs"].(map[string]any)["extra"]; ok {
		t.Error("deleted pack still served")
	}
	if !strings.Contains(queryName("pack_mac-apps_apps", map[string]Pack{"mac-apps": nil}), "apps") ||
		queryName("pack_a_b_c", map[string]Pack{"a": nil, "a_b": nil}) != "c" || queryName("plain", nil) != "plain" {
		t.Error("queryName")
	}
}
