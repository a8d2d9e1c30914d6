package server

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/detections/packs"
)

// hitRow is a row of the detection pack's quarry_ioa_hits query.
func hitRow(hit, tech, tactic, sev string, at time.Time) map[string]string {
	return map[string]string{"hit_id": hit, "time": fmt.Sprint(at.Unix()), "host_identifier": "h",
		"rule_id": "r-" + tech, "rule_title": "Rule " + tech, "rule_author": "Quarry", "rule_source": "builtin",
		"technique_id": tech, "technique_name": "", "tactic": tactic, "severity": sev, "confidence": "high",
		"description": "desc", "recommendations": "rec", "eid": "7", "pid": "4242", "path": "/usr/bin/curl",
		"cmdline": "curl http://x | sh", "parent_path": "/bin/bash", "username": "root", "source": "ebpf"}
}

func TestEnrollConfigAndVersion(t *testing.T) {
	f := newFixture(t, openSQLite(t))
	linux := f.enroll("host-linux", "ubuntu")
	mac := f.enroll("host-mac", "darwin")

	code, cfg := f.osquery("config", map[string]any{"node_key": linux})
	if code != 200 || cfg["node_invalid"] != false {
		t.Fatalf("config: %d %v", code, cfg)
	}
	opts := cfg["options"].(map[string]any)
	if opts["distributed_interval"] != float64(10) || opts["pack_delimiter"] != "_" {
		t.Errorf("options = %v", opts)
	}
	if _, ok := cfg["schedule"].(map[string]any); !ok {
		t.Errorf("schedule = %v", cfg["schedule"])
	}
	pk := cfg["packs"].(map[string]any)[packs.Name].(map[string]any)
	if qs := pk["queries"].(map[string]any); len(qs) != len(packs.Detection().Queries) {
		t.Errorf("linux host got %d queries, want all %d", len(qs), len(packs.Detection().Queries))
	}
	// The Mac gets only the platform-neutral coverage query.
	code, cfg = f.osquery("config", map[string]any{"node_key": mac})
	qs := cfg["packs"].(map[string]any)[packs.Name].(map[string]any)["queries"].(map[string]any)
	if _, ok := qs[packs.QueryTechniqueCoverage]; code != 200 || len(qs) != 1 || !ok {
		t.Errorf("darwin host queries = %v", qs)
	}
	// Fleet's path and the NodeKey header work too.
	code, cfg = f.do("POST", "/api/osquery/config", []byte(`{}`), map[string]string{"Authorization": "NodeKey " + linux})
	if code != 200 || cfg["packs"] == nil {
		t.Errorf("Fleet path with NodeKey header: %d %v", code, cfg)
	}
	code, v := f.do("GET", "/version", nil, nil)
	if code != 200 || v["version"] != "test" {
		t.Errorf("version: %d %v", code, v)
	}
	// Re-enrolling keeps the host and retires the old key.
	again := f.enroll("host-linux", "ubuntu")
	if code, out := f.osquery("config", map[string]any{"node_key": linux}); code != 401 || out["node_invalid"] != true {
		t.Errorf("old key after re-enroll: %d %v", code, out)
	}
	if code, _ := f.osquery("config", map[string]any{"node_key": again}); code != 200 {
		t.Errorf("new key: %d", code)
	}
	code, hosts := f.api("GET", "/api/v1/hosts", nil)
	list := hosts["hosts"].([]any)
	if code != 200 || len(list) != 2 {
		t.Fatalf("hosts: %d %v", code, hosts)
	}
	h := list[0].(map[string]any)
	if h["host_identifier"] != "host-linux" || h["hostname"] != "host-linux.example" || h["platform"] != "ubuntu" ||
		h["platform_family"] != "linux" || h["osquery_version"] != "5.12.1" || h["online"] != true {
		t.Errorf("host = %v", h)
	}
	f.clock.Add(2 * time.Minute)
	_, hosts = f.api("GET", "/api/v1/hosts", nil)
	if h := hosts["hosts"].([]any)[0].(map[string]any); h["online"] != false {
		t.Errorf("host after 2 minutes of silence: online = %v", h["online"])
	}
}

func TestQuarryVersionAtEnroll(t *testing.T) {
	f := newFixture(t, openSQLite(t))
	body := enrollBody("agent-1", "agent-1", "ubuntu", testSecret)
	body["host_details"].(map[string]any)["quarry_info"] = map[string]any{"version": "0.3.0"}
	if code, _ := f.osquery("enroll", body); code != 200 {
		t.Fatal(code)
	}
	_, hosts := f.api("GET", "/api/v1/hosts", nil)
	if h := hosts["hosts"].([]any)[0].(map[string]any); h["quarry_version"] != "0.3.0" {
		t.Errorf("quarry_version = %v", h["quarry_version"])
	}
}

// TestResultLogForms sends result logs in each of osquery's forms and
// checks rows, detections and their de-duplication.
func TestResultLogForms(t *testing.T) {
	f := newFixture(t, openSQLite(t))
	key := f.enroll("host-a", "ubuntu")
	now := f.clock.Now()
	hitsName := "pack_" + packs.Name + "_" + packs.QueryHits
	decorations := map[string]string{"host_uuid": "abc", "hostname": "host-a"}
	data := []any{
		// Batched differential.
		map[string]any{"name": hitsName, "hostIdentifier": "host-a", "calendarTime": now.UTC().Format(time.ANSIC) + " UTC",
			"unixTime": now.Unix(), "epoch": 0, "counter": 1, "numerics": false, "decorations": decorations,
			"diffResults": map[string]any{
				"added":   []any{hitRow("hit-1", "T1059.004", "execution", "high", now), hitRow("hit-2", "T1105", "command-and-control", "medium", now)},
				"removed": []any{hitRow("hit-0", "T1003", "credential-access", "high", now)},
			}},
		// Event format: one row per item, the same hit again (de-duplicated).
		map[string]any{"name": hitsName, "hostIdentifier": "host-a", "unixTime": fmt.Sprint(now.Unix()), "epoch": 0,
			"counter": 2, "decorations": decorations, "columns": hitRow("hit-1", "T1059.004", "execution", "high", now), "action": "added"},
		// The high-severity query: other columns, tactic from ATT&CK.
		map[string]any{"name": "pack_" + packs.Name + "_" + packs.QueryHighSeverity, "hostIdentifier": "host-a",
			"unixTime": now.Unix(), "columns": map[string]string{"hit_id": "hit-3", "time": fmt.Sprint(now.Unix()),
				"severity": "critical", "confidence": "high", "rule_title": "LSASS dump", "rule_author": "Quarry",
				"technique_id": "T1003.001", "technique_name": "LSASS Memory", "tactics": "credential-access",
				"tactic_name": "Credential Access", "matrix_order": "7", "pid": "99", "cmdline": "procdump",
				"parent_path": "/bin/sh", "username": "root", "recommendations": "isolate"}, "action": "added"},
		// Snapshot of some other query whose name holds ioa_hits.
		map[string]any{"name": "my_ioa_hits_snapshot", "hostIdentifier": "host-a", "unixTime": now.Unix(), "action": "snapshot",
			"snapshot": []any{hitRow("hit-4", "T1053.003", "", "low", now)}},
		// A plain snapshot: rows, no detections.
		map[string]any{"name": "uptime", "unixTime": now.Unix(), "snapshot": []any{map[string]string{"days": "3"}}, "action": "snapshot"},
		// Not an object: skipped, the rest stored.
		"garbage", 42,
		// A JSON string holding an item, as some clients send.
		`{"name":"strung","unixTime":1,"columns":{"a":"1"},"action":"added"}`,
	}
	body := map[string]any{"node_key": key, "log_type": "result", "data": data}
	if code, out := f.osquery("log", body); code != 200 || out["node_invalid"] != false {
		t.Fatalf("log: %d %v", code, out)
	}
	// The same request again (osquery resends when it missed the answer):
	// nothing is stored twice.
	if code, _ := f.osquery("log", body); code != 200 {
		t.Fatal(code)
	}
	code, out := f.api("GET", "/api/v1/detections", nil)
	if code != 200 || out["total"] != float64(4) {
		t.Fatalf("detections: %d %v", code, out)
	}
	byHit := map[string]map[string]any{}
	for _, d := range out["detections"].([]any) {
		d := d.(map[string]any)
		byHit[d["hit_id"].(string)] = d
	}
	d1 := byHit["hit-1"]
	if d1["technique_name"] != "Unix Shell" || d1["host_identifier"] != "host-a" || d1["pid"] != float64(4242) ||
		d1["rule_author"] != "Quarry" || d1["cmdline"] != "curl http://x | sh" || d1["query"] != packs.QueryHits {
		t.Errorf("hit-1 = %v", d1)
	}
	if d3 := byHit["hit-3"]; d3["tactic"] != "credential-access" || d3["severity"] != "critical" || d3["recommendations"] != "isolate" {
		t.Errorf("hit-3 = %v", d3)
	}
	if d4 := byHit["hit-4"]; d4["tactic"] != "persistence,execution,privilege-escalation" && !strings.Contains(fmt.Sprint(d4["tactic"]), "persistence") {
		t.Errorf("hit-4 tactic from ATT&CK = %v", d4["tactic"])
	}
	if _, ok := byHit["hit-0"]; ok {
		t.Error("a removed row became a detection")
	}
	// Rows, by the query's own name and by osquery's logged name.
	for _, name := range []string{packs.QueryHits, hitsName} {
		code, res := f.api("GET", "/api/v1/queries/"+name+"/results", nil)
		if code != 200 || res["total"] != float64(4) { // 3 diff + 1 event, once though sent twice
			t.Errorf("results of %s: %d total %v", name, code, res["total"])
		}
	}
	_, res := f.api("GET", "/api/v1/queries/uptime/results", nil)
	r0 := res["results"].([]any)[0].(map[string]any)
	if r0["action"] != "snapshot" || r0["columns"].(map[string]any)["days"] != "3" {
		t.Errorf("uptime row = %v", r0)
	}
	if _, res := f.api("GET", "/api/v1/queries/strung/results", nil); res["total"] != float64(1) {
		t.Errorf("string-wrapped item: %v", res)
	}
	// Status logs, gzip-compressed, severity and line as strings.
	status := map[string]any{"node_key": key, "log_type": "status", "data": []any{
		map[string]any{"hostIdentifier": "host-a", "calendarTime": "x", "unixTime": "1767225600", "severity": "1",
			"filename": "scheduler.cpp", "line": "83", "message": "Executing scheduled query", "version": "5.12.1"}}}
	code, _ = f.do("POST", "/api/v1/osquery/log", gz(t, mustJSON(t, status)),
		map[string]string{"Content-Encoding": "gzip", "Content-Type": "application/json"})
	if code != 200 {
		t.Fatalf("gzip status log: %d", code)
	}
	hosts, _ := f.st.Hosts(t.Context())
	logs, err := f.st.StatusLogs(t.Context(), hosts[0].ID, 10)
	if err != nil || len(logs) != 1 || logs[0].Line != 83 || logs[0].Severity != 1 || logs[0].Filename != "scheduler.cpp" {
		t.Errorf("status logs = %+v, %v", logs, err)
	}
}

func TestDetectionsAPI(t *testing.T) {
	f := newFixture(t, openSQLite(t))
	a := f.enroll("host-a", "ubuntu")
	b := f.enroll("host-b", "ubuntu")
	now := f.clock.Now()
	day := 24 * time.Hour
	send := func(key string, rows ...map[string]string) {
		var data []any
		for _, r := range rows {
			data = append(data, map[string]any{"name": "pack_" + packs.Name + "_" + packs.QueryHits, "unixTime": now.Unix(),
				"columns": r, "action": "added"})
		}
		if code, _ := f.osquery("log", map[string]any{"node_key": key, "log_type": "result", "data": data}); code != 200 {
			t.Fatal(code)
		}
	}
	send(a, hitRow("1", "T1003", "credential-access", "high", now.Add(-2*day)),
		hitRow("2", "T1003.001", "credential-access", "critical", now.Add(-day)),
		hitRow("3", "T1059.004", "execution", "medium", now))
	send(b, hitRow("4", "T1003.008", "credential-access", "high", now),
		hitRow("5", "T1547.006", "persistence,privilege-escalation", "low", now))

	count := func(query string) float64 {
		t.Helper()
		code, out := f.api("GET", "/api/v1/detections?"+query, nil)
		if code != 200 {
			t.Fatalf("detections?%s: %d %v", query, code, out)
		}
		return out["total"].(float64)
	}
	for q, want := range map[string]float64{
		"":                                       5,
		"technique=T1003":                        3,
		"technique=T1003.001":                    1,
		"technique=t1003.008,T1059":              2,
		"tactic=credential-access":               3,
		"tactic=TA0004":                          1, // privilege-escalation, by ID
		"tactic=Credential%20Access":             3,
		"severity=high,critical":                 3,
		"host=host-b":                            2,
		"host=host-a.example":                    0, // a hostname is not an identifier
		"hostname=host-a.example":                3,
		"host=nobody":                            0,
		"since=36h":                              4,
		"since=36h&until=12h":                    1,
		"technique=T1003&host=host-a":            2,
		"limit=1&offset=1":                       5,
		"severity=high&tactic=credential-access": 2,
	} {
		if got := count(q); got != want {
			t.Errorf("detections?%s: total %v, want %v", q, got, want)
		}
	}
	if _, out := f.api("GET", "/api/v1/detections?limit=2", nil); len(out["detections"].([]any)) != 2 {
		t.Errorf("limit=2 gave %d", len(out["detections"].([]any)))
	}
	for _, bad := range []string{"technique=x", "tactic=nope", "severity=huge", "since=yesterday", "limit=0", "offset=-1"} {
		if code, _ := f.api("GET", "/api/v1/detections?"+bad, nil); code != 400 {
			t.Errorf("detections?%s: %d, want 400", bad, code)
		}
	}

	summary := func(by string) map[string]float64 {
		t.Helper()
		code, out := f.api("GET", "/api/v1/detections/summary?by="+by, nil)
		if code != 200 || out["by"] != by {
			t.Fatalf("summary by %s: %d %v", by, code, out)
		}
		m := map[string]float64{}
		for _, b := range out["buckets"].([]any) {
			b := b.(map[string]any)
			m[b["key"].(string)] = b["count"].(float64)
		}
		return m
	}
	if m := summary("technique"); m["T1003"] != 1 || m["T1003.001"] != 1 || len(m) != 5 {
		t.Errorf("by technique = %v", m)
	}
	if m := summary("tactic"); m["credential-access"] != 3 || m["persistence"] != 1 || m["privilege-escalation"] != 1 || m["execution"] != 1 {
		t.Errorf("by tactic = %v", m)
	}
	if m := summary("host"); m["host-a"] != 3 || m["host-b"] != 2 {
		t.Errorf("by host = %v", m)
	}
	if m := summary("day"); m[now.UTC().Format(time.DateOnly)] != 3 || len(m) != 3 {
		t.Errorf("by day = %v", m)
	}
	if code, _ := f.api("GET", "/api/v1/detections/summary?by=color", nil); code != 400 {
		t.Errorf("by=color: %d", code)
	}

	code, layer := f.api("GET", "/api/v1/attack/layer?since=36h", nil)
	if code != 200 || layer["domain"] != "enterprise-attack" {
		t.Fatalf("layer: %d %v", code, layer)
	}
	scores := map[string]float64{}
	for _, c := range layer["techniques"].([]any) {
		c := c.(map[string]any)
		scores[c["techniqueID"].(string)] = c["score"].(float64)
		if c["techniqueID"] == "T1003.001" && !strings.Contains(fmt.Sprint(c["comment"]), "Rule T1003.001") {
			t.Errorf("layer cell without its rule: %v", c)
		}
	}
	if scores["T1003.001"] != 1 || scores["T1003"] != 0 || len(scores) != 4 {
		t.Errorf("layer scores = %v", scores)
	}
}

func TestAnalystAuth(t *testing.T) {
	f := newFixture(t, openSQLite(t))
	for _, hdr := range []map[string]string{nil, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"},
		{"Authorization": "Bearer "}} {
		for _, path := range []string{"/api/v1/hosts", "/api/v1/detections", "/api/v1/detections/summary",
			"/api/v1/attack/layer", "/api/v1/hunts/x", "/api/v1/queries/q/results", "/api/v1/packs"} {
			if code, _ := f.do("GET", path, nil, hdr); code != 401 {
				t.Errorf("GET %s with %v: %d, want 401", path, hdr, code)
			}
		}
		if code, _ := f.do("POST", "/api/v1/hunts", []byte(`{"sql":"SELECT 1"}`), hdr); code != 401 {
			t.Errorf("POST hunts with %v: %d", hdr, code)
		}
	}
	hosts, _ := f.st.Hosts(t.Context())
	if len(hosts) != 0 {
		t.Fatal("hosts appeared")
	}
	var tokens []string
	for range 2 {
		tok, err := CreateToken(t.Context(), f.st, "x")
		if err != nil || !strings.HasPrefix(tok, TokenPrefix) {
			t.Fatal(tok, err)
		}
		tokens = append(tokens, tok)
	}
	if tokens[0] == tokens[1] {
		t.Fatal("two tokens alike")
	}
	if code, _ := f.do("GET", "/api/v1/hosts", nil, map[string]string{"Authorization": "Bearer " + tokens[1]}); code != 200 {
		t.Errorf("new token: %d", code)
	}
	raw, _ := json.Marshal(tokens[0])
	if ok, _ := f.st.TokenExists(t.Context(), strings.Trim(string(raw), `"`)); ok {
		t.Error("token stored in the clear")
	}
}

// TestLogRetryStoredOnce posts the same log body again (osqueryd and
// Quarry's agent resend a request whose answer they did not get, though
// the server committed it), plainly and gzip-compressed: every row is
// stored once, identical rows of one log stay distinct, and rows of a
// later run with the same content are new.
func TestLogRetryStoredOnce(t *testing.T) {
	f := newFixture(t, openSQLite(t))
	key := f.enroll("host-a", "ubuntu")
	other := f.enroll("host-b", "ubuntu")
	now := f.clock.Now().Unix()
	a, b := map[string]string{"pid": "1"}, map[string]string{"pid": "2"}
	log := func(key string, counter int, at int64) map[string]any {
		return map[string]any{"node_key": key, "log_type": "result", "data": []any{
			// Batch diffResults, a row added twice (the query returned it twice).
			map[string]any{"name": "procs", "unixTime": at, "epoch": 3, "counter": counter,
				"diffResults": map[string]any{"added": []any{a, a, b}, "removed": []any{map[string]string{"pid": "9"}}}},
			// Event format: one row per item, the same counter.
			map[string]any{"name": "events", "unixTime": at, "epoch": 3, "counter": counter, "action": "added", "columns": a},
			map[string]any{"name": "events", "unixTime": at, "epoch": 3, "counter": counter, "action": "added", "columns": b},
			// A snapshot holding one row twice.
			map[string]any{"name": "users", "unixTime": at, "epoch": 3, "counter": counter, "action": "snapshot",
				"snapshot": []any{a, a}},
		}}
	}
	totals := func() [3]float64 {
		var out [3]float64
		for i, q := range []string{"procs", "events", "users"} {
			code, res := f.api("GET", "/api/v1/queries/"+q+"/results", nil)
			if code != 200 {
				t.Fatalf("results of %s: %d", q, code)
			}
			out[i], _ = res["total"].(float64)
		}
		return out
	}
	first := log(key, 1, now)
	if code, _ := f.osquery("log", first); code != 200 {
		t.Fatal(code)
	}
	want := [3]float64{4, 2, 2}
	if got := totals(); got != want {
		t.Fatalf("first post: rows %v, want %v", got, want)
	}
	if code, _ := f.osquery("log", first); code != 200 {
		t.Fatal(code)
	}
	code, _ := f.do("POST", "/api/v1/osquery/log", gz(t, mustJSON(t, first)),
		map[string]string{"Content-Encoding": "gzip", "Content-Type": "application/json"})
	if code != 200 {
		t.Fatal(code)
	}
	if got := totals(); got != want {
		t.Fatalf("after posting the same body twice more: rows %v, want %v", got, want)
	}
	// The next run with the same rows, and another host's identical log,
	// are new rows.
	for _, body := range []map[string]any{log(key, 2, now+10), log(other, 1, now)} {
		if code, _ := f.osquery("log", body); code != 200 {
			t.Fatal(code)
		}
	}
	if got, want := totals(), [3]float64{12, 6, 6}; got != want {
		t.Fatalf("after a new run and another host: rows %v, want %v", got, want)
	}
	_, res := f.api("GET", "/api/v1/queries/events/results?limit=1", nil)
	if r := res["results"].([]any)[0].(map[string]any); r["epoch"] != float64(3) || r["counter"] == nil {
		t.Errorf("result row lacks osquery's epoch and counter: %v", r)
	}
}

// TestDetectionTimeAndVocabulary: a hit found now on an event of last month
// (an imported recording) is old by event time and new by detection time;
// tactics arrive in one ATT&CK vocabulary (v18.1) whatever the host sent;
// an untagged rule's hit is kept as 'untagged' and counted apart.
func TestDetectionTimeAndVocabulary(t *testing.T) {
	f := newFixture(t, openSQLite(t))
	a := f.enroll("host-a", "ubuntu")
	now := f.clock.Now()
	imported := hitRow("imp", "T1003.001", "credential-access", "high", now.Add(-30*24*time.Hour))
	found := now.Add(-10 * time.Minute) // before the log was sent
	imported["detected_at"] = fmt.Sprint(found.Unix())
	sigma := hitRow("sigma", "T1685", "defense-impairment", "high", now)
	none := hitRow("none", "", "stealth", "medium", now)
	var data []any
	for _, r := range []map[string]string{imported, sigma, none} {
		data = append(data, map[string]any{"name": "pack_" + packs.Name + "_" + packs.QueryHits, "unixTime": now.Unix(),
			"columns": r, "action": "added"})
	}
	if code, _ := f.osquery("log", map[string]any{"node_key": a, "log_type": "result", "data": data}); code != 200 {
		t.Fatal(code)
	}
	hits := func(query string) map[string]map[string]any {
		t.Helper()
		code, out := f.api("GET", "/api/v1/detections?"+query, nil)
		if code != 200 {
			t.Fatalf("detections?%s: %d %v", query, code, out)
		}
		m := map[string]map[string]any{}
		for _, d := range out["detections"].([]any) {
			d := d.(map[string]any)
			m[d["hit_id"].(string)] = d
		}
		return m
	}
	if m := hits("since=1h"); len(m) != 2 || m["imp"] != nil {
		t.Errorf("by event time: %v", m)
	}
	m := hits("since=1h&time=detected")
	if len(m) != 3 || m["imp"] == nil {
		t.Fatalf("by detection time: %v", m)
	}
	if m["imp"]["detected_at"] != found.UTC().Format(time.RFC3339) || m["imp"]["time"] == m["imp"]["detected_at"] {
		t.Errorf("imported hit: time %v, detected_at %v", m["imp"]["time"], m["imp"]["detected_at"])
	}
	if m["sigma"]["tactic"] != "defense-evasion" || m["none"]["tactic"] != "defense-evasion" {
		t.Errorf("tactics not in v18.1: sigma %v, untagged %v", m["sigma"]["tactic"], m["none"]["tactic"])
	}
	if m["none"]["technique_id"] != "untagged" {
		t.Errorf("untagged hit: %v", m["none"])
	}
	if got := hits("technique=untagged"); len(got) != 1 || got["none"] == nil {
		t.Errorf("technique=untagged: %v", got)
	}
	if got := hits("technique=T1562.001"); len(got) != 1 || got["sigma"] == nil {
		t.Errorf("technique=T1562.001 (v18.1 of T1685): %v", got)
	}
	if got := hits("tactic=stealth"); len(got) != 2 {
		t.Errorf("tactic=stealth (v19 of defense-evasion): %v", got)
	}
	if code, _ := f.api("GET", "/api/v1/detections?time=later", nil); code != 400 {
		t.Errorf("time=later: %d", code)
	}
	_, sum := f.api("GET", "/api/v1/detections/summary?by=technique", nil)
	apart := false
	for _, b := range sum["buckets"].([]any) {
		if b := b.(map[string]any); b["key"] == "untagged" && b["count"] == 1.0 {
			apart = true
		}
	}
	if !apart {
		t.Errorf("summary without an untagged bucket: %v", sum)
	}
}
