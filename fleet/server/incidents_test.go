package server

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/detections/packs"
	"github.com/quarry-sec/quarry/detections/pipeline"
	"github.com/quarry-sec/quarry/detections/ruleset"
	"github.com/quarry-sec/quarry/extension/sqlengine"
	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/fleet/store/pgstore"
	"github.com/quarry-sec/quarry/internal/pgtest"
	"github.com/quarry-sec/quarry/tables/activity"
	"github.com/quarry-sec/quarry/tables/catalog"
	"github.com/quarry-sec/quarry/tables/ioa"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
	"github.com/quarry-sec/quarry/telemetry/importers"
)

func incidentRow(id string, score float64, first, last time.Time, hits ...string) map[string]string {
	return map[string]string{"incident_id": id, "host_identifier": "h", "first_seen": fmt.Sprint(first.Unix()),
		"last_seen": fmt.Sprint(last.Unix()), "score": strconv.FormatFloat(score, 'f', -1, 64), "severity": "high",
		"tactics": "execution,defense-evasion", "techniques": "T1059.001,T1218.005", "hit_count": fmt.Sprint(len(hits)),
		"root_pid": "10980", "root_path": `C:\Windows\System32\mshta.exe`, "summary": "mshta.exe: chain",
		"hit_ids": strings.Join(hits, ",")}
}

func treeRow(id, key, parent string, depth int, pid int64, path string, hits int, techs string) map[string]string {
	return map[string]string{"incident_id": id, "depth": fmt.Sprint(depth), "relation": "descendant",
		"process_key": key, "parent_key": parent, "node_pid": fmt.Sprint(pid), "node_ppid": "1", "path": path,
		"cmdline": path + " -x", "username": "wardog", "start_time": "1700000000", "exit_time": "0", "exited": "0",
		"eid": "0", "hit_count": fmt.Sprint(hits), "techniques": techs, "tactics": "", "severity": ""}
}

// resultItem is a batched differential result log item of a pack query.
func resultItem(query string, at time.Time, counter int, added, removed []any) map[string]any {
	return map[string]any{"name": "pack_" + packs.Name + "_" + query, "hostIdentifier": "h", "unixTime": at.Unix(),
		"epoch": 0, "counter": counter, "diffResults": map[string]any{"added": added, "removed": removed}}
}

// TestIncidentLogsAndAPI: incident rows of the detection pack become
// fleet incidents, updated as the host reports them grown, untouched by an
// older report; the analyst API lists, filters and pages them and shows
// one with its hits (joined to detections) and its tree. On SQLite, and on
// PostgreSQL when QUARRY_TEST_POSTGRES is set.
func TestIncidentLogsAndAPI(t *testing.T) {
	t.Run("SQLite", func(t *testing.T) { testIncidentLogsAndAPI(t, openSQLite(t)) })
	t.Run("PostgreSQL", func(t *testing.T) {
		dsn := os.Getenv("QUARRY_TEST_POSTGRES")
		if dsn == "" {
			t.Skip("PostgreSQL incident test skipped: QUARRY_TEST_POSTGRES is not set (.ci/run sets it)")
		}
		st, err := pgstore.Open(context.Background(), pgtest.Schema(t, dsn))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		testIncidentLogsAndAPI(t, st)
	})
}

// withActivity sets a tree row's activity column.
func withActivity(row map[string]string, act string) map[string]string {
	row["activity"] = act
	return row
}

func testIncidentLogsAndAPI(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	key := f.enroll("host-a", "ubuntu")
	keyB := f.enroll("host-b", "ubuntu")
	now := f.clock.Now()
	first := incidentRow("inc-1", 7, now.Add(-10*time.Minute), now.Add(-10*time.Minute), "hit-1")
	firstLog := map[string]any{"node_key": key, "log_type": "result", "data": []any{
		resultItem(packs.QueryHits, now.Add(-9*time.Minute), 1, []any{
			hitRow("hit-1", "T1218.005", "defense-evasion", "high", now.Add(-10*time.Minute)),
			hitRow("hit-2", "T1059.001", "execution", "high", now.Add(-5*time.Minute)),
		}, nil),
		resultItem(packs.QueryIncidents, now.Add(-9*time.Minute), 1, []any{first}, nil),
		resultItem(packs.QueryIncidentTree, now.Add(-9*time.Minute), 1, []any{
			treeRow("inc-1", "k-cmd", "", 0, 5888, "cmd.exe", 0, ""),
			treeRow("inc-1", "k-mshta", "k-cmd", 1, 10980, "mshta.exe", 1, "T1218.005"),
		}, nil),
	}}
	if code, out := f.osquery("log", firstLog); code != 200 {
		t.Fatalf("log: %d %v", code, out)
	}
	// A minute later the incident grew: the diff removes the old row and
	// adds the new one.
	grown := incidentRow("inc-1", 9.5, now.Add(-10*time.Minute), now.Add(-5*time.Minute), "hit-1", "hit-2")
	if code, out := f.osquery("log", map[string]any{"node_key": key, "log_type": "result", "data": []any{
		resultItem(packs.QueryIncidents, now.Add(-4*time.Minute), 2, []any{grown}, []any{first}),
		resultItem(packs.QueryIncidentTree, now.Add(-4*time.Minute), 2, []any{
			withActivity(treeRow("inc-1", "k-mshta", "k-cmd", 1, 10980, "mshta.exe", 1, "T1218.005"), `{"network": not json`),
			withActivity(treeRow("inc-1", "k-psh", "k-mshta", 2, 9572, "powershell.exe", 1, "T1059.001"),
				`{"network":{"count":5,"items":[{"time":1700000000,"summary":"connect a\u0000b","eid":31,"techniques":["T1071"],"severity":"HIGH","extra":1}]}}`),
		}, nil),
	}}); code != 200 {
		t.Fatalf("log: %d %v", code, out)
	}
	// The first log arrives again (its answer was lost): nothing changes.
	if code, _ := f.osquery("log", firstLog); code != 200 {
		t.Fatal(code)
	}
	// Host b: a weaker incident, an hour old.
	if code, _ := f.osquery("log", map[string]any{"node_key": keyB, "log_type": "result", "data": []any{
		resultItem(packs.QueryIncidents, now.Add(-50*time.Minute), 1, []any{
			incidentRow("inc-b", 4, now.Add(-time.Hour), now.Add(-time.Hour), "hit-9")}, nil),
	}}); code != 200 {
		t.Fatal(code)
	}

	code, out := f.api("GET", "/api/v1/incidents", nil)
	if code != 200 || out["total"] != float64(2) {
		t.Fatalf("incidents: %d %v", code, out)
	}
	list := out["incidents"].([]any)
	top := list[0].(map[string]any)
	if top["incident_id"] != "inc-1" || top["score"] != 9.5 || top["hit_count"] != float64(2) ||
		top["host_identifier"] != "host-a" || fmt.Sprint(top["tactics"]) != "[execution defense-evasion]" ||
		top["root_path"] != `C:\Windows\System32\mshta.exe` || list[1].(map[string]any)["incident_id"] != "inc-b" {
		t.Fatalf("incidents = %v", list)
	}
	if last, _ := time.Parse(time.RFC3339, top["last_seen"].(string)); !last.Equal(now.Add(-5 * time.Minute)) {
		t.Errorf("last_seen = %v, want the grown incident's %v", top["last_seen"], now.Add(-5*time.Minute))
	}
	for _, tc := range []struct {
		query string
		want  []string
		total float64
	}{
		{"host=host-b", []string{"inc-b"}, 1},
		{"host=host-a.example", nil, 0}, // a hostname is not an identifier
		{"hostname=host-a.example", []string{"inc-1"}, 1},
		{"hostname=HOST-A.example&host=host-a", []string{"inc-1"}, 1},
		{"hostname=host-a.example&host=host-b", nil, 0},
		{"host=nowhere", nil, 0},
		{"min_score=5", []string{"inc-1"}, 1},
		{"since=30m", []string{"inc-1"}, 1},
		{"until=" + url.QueryEscape(now.Add(-30*time.Minute).Format(time.RFC3339)), []string{"inc-b"}, 1},
		{"limit=1&offset=1", []string{"inc-b"}, 2},
	} {
		code, out := f.api("GET", "/api/v1/incidents?"+tc.query, nil)
		if code != 200 {
			t.Fatalf("%s: %d %v", tc.query, code, out)
		}
		var got []string
		for _, in := range out["incidents"].([]any) {
			got = append(got, in.(map[string]any)["incident_id"].(string))
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) || out["total"] != tc.total {
			t.Errorf("?%s: %v (total %v), want %v (total %v)", tc.query, got, out["total"], tc.want, tc.total)
		}
	}
	for _, q := range []string{"min_score=high", "min_score=-1", "since=never", "limit=0"} {
		if code, _ := f.api("GET", "/api/v1/incidents?"+q, nil); code != 400 {
			t.Errorf("?%s: %d, want 400", q, code)
		}
	}

	// One incident, by the fleet's ID and by the host's incident ID.
	id := fmt.Sprint(top["id"])
	for _, path := range []string{"/api/v1/incidents/" + id, "/api/v1/incidents/inc-1", "/api/v1/incidents/inc-1?host=host-a"} {
		code, d := f.api("GET", path, nil)
		if code != 200 || d["incident_id"] != "inc-1" || d["score"] != 9.5 {
			t.Fatalf("%s: %d %v", path, code, d)
		}
		hits := d["hits"].([]any)
		if len(hits) != 2 {
			t.Fatalf("%s: hits %v", path, hits)
		}
		h1 := hits[0].(map[string]any)
		ds := h1["detections"].([]any)
		if h1["hit_id"] != "hit-1" || len(ds) != 1 || ds[0].(map[string]any)["technique_id"] != "T1218.005" ||
			ds[0].(map[string]any)["rule_title"] != "Rule T1218.005" {
			t.Errorf("%s: hit-1 = %v", path, h1)
		}
		tree := d["tree"].([]any)
		var nodes []string
		for _, n := range tree {
			n := n.(map[string]any)
			nodes = append(nodes, fmt.Sprintf("%v<%v:%v:%v:%v", n["process_key"], n["parent_key"], n["pid"], n["hit_count"], n["techniques"]))
		}
		want := "[k-cmd<:5888:0:[] k-mshta<k-cmd:10980:1:[T1218.005] k-psh<k-mshta:9572:1:[T1059.001]]"
		if fmt.Sprint(nodes) != want {
			t.Errorf("%s: tree %v, want %s", path, nodes, want)
		}
		// Activity: what does not parse is dropped, the node kept; the rest
		// re-encoded (the NUL escaped, severity lower-cased).
		if _, has := tree[1].(map[string]any)["activity"]; has {
			t.Errorf("%s: mshta's activity kept though it does not parse: %v", path, tree[1])
		}
		act, err := activity.ParseProcessActivity(fmt.Sprint(tree[2].(map[string]any)["activity"]))
		if err != nil || act["network"] == nil || act["network"].Count != 5 || len(act["network"].Items) != 1 ||
			act["network"].Items[0].Summary != "connect a\x00b" || act["network"].Items[0].Severity != "high" ||
			fmt.Sprint(act["network"].Items[0].Techniques) != "[T1071]" {
			t.Errorf("%s: powershell's activity %v (%v)", path, tree[2].(map[string]any)["activity"], err)
		}
		n := tree[1].(map[string]any)
		if n["cmdline"] != "mshta.exe -x" || n["user"] != "wardog" || n["time"] != "2023-11-14T22:13:20Z" ||
			n["depth"] != float64(1) || n["exited"] != false {
			t.Errorf("%s: node = %v", path, n)
		}
	}
	for _, path := range []string{"/api/v1/incidents/999", "/api/v1/incidents/nope", "/api/v1/incidents/inc-1?host=host-b"} {
		if code, _ := f.api("GET", path, nil); code != 404 {
			t.Errorf("%s: %d, want 404", path, code)
		}
	}
	for _, path := range []string{"/api/v1/incidents", "/api/v1/incidents/" + id} {
		if code, _ := f.do("GET", path, nil, nil); code != 401 {
			t.Errorf("%s without a token: %d, want 401", path, code)
		}
	}
}

// TestIncidentsFromEngine runs the detection pack's incident queries on
// Quarry's embedded engine over a recorded chain imported with detection
// on, sends their rows as a host does, and checks that the API's incident
// and tree are the host's.
func TestIncidentsFromEngine(t *testing.T) {
	const recording = "../../cmd/quarry/testdata/incidents/chain.json"
	if _, err := os.Stat(recording); err != nil {
		t.Skipf("recording %s is missing: %v", recording, err)
	}
	k := kb(t)
	res, err := ruleset.Load(ruleset.Config{Builtin: true, KB: k})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ts, err := eventstore.Open(eventstore.Path(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer ts.Close()
	r, _, err := importers.Open(recording, importers.WithHost("chain-host"))
	if err != nil {
		t.Fatal(err)
	}
	var evs []telemetry.Event
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		var re *telemetry.RecordError
		if errors.As(err, &re) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	r.Close()
	// Move the recording to a few minutes ago: the queries look back a day.
	last := evs[0].Time
	for _, ev := range evs {
		if ev.Time.After(last) {
			last = ev.Time
		}
	}
	shift := time.Now().Add(-5 * time.Minute).Sub(last).Truncate(time.Second)
	p := pipeline.New(ts, detections.NewEngine(res.Rules), pipeline.Options{KB: k, OnError: func(err error) { t.Error(err) }})
	for _, ev := range evs {
		ev.Time = ev.Time.Add(shift)
		if !ev.StartTime.IsZero() {
			ev.StartTime = ev.StartTime.Add(shift)
		}
		p.Add(ev)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	reg, err := catalog.New(catalog.Sources{ATTACK: k, Events: ts, Rules: ioa.StaticRules(res.Rules), OsqueryAlias: true})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := sqlengine.Open(reg)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	pack := packs.Detection()
	run := func(query string) []any {
		t.Helper()
		rows := queryStrings(t, eng, pack.Queries[query].Query)
		out := make([]any, len(rows))
		for i, r := range rows {
			out[i] = r
		}
		return out
	}
	hits, incidents, tree := run(packs.QueryHits), run(packs.QueryIncidents), run(packs.QueryIncidentTree)
	if len(incidents) == 0 || len(tree) == 0 {
		t.Fatalf("the chain gave %d incident rows and %d tree rows on the engine", len(incidents), len(tree))
	}
	t.Logf("the host reports %d hit rows, %d incidents, %d tree rows", len(hits), len(incidents), len(tree))
	f := newFixture(t, openSQLite(t))
	key := f.enroll("chain-host", "ubuntu")
	now := f.clock.Now()
	if code, out := f.osquery("log", map[string]any{"node_key": key, "log_type": "result", "data": []any{
		resultItem(packs.QueryHits, now, 1, hits, nil),
		resultItem(packs.QueryIncidents, now, 1, incidents, nil),
		resultItem(packs.QueryIncidentTree, now, 1, tree, nil),
	}}); code != 200 {
		t.Fatalf("log: %d %v", code, out)
	}
	code, out := f.api("GET", "/api/v1/incidents", nil)
	if code != 200 || out["total"] != float64(len(incidents)) {
		t.Fatalf("incidents: %d %v, want %d", code, out, len(incidents))
	}
	for _, row := range incidents {
		want := row.(map[string]string)
		code, d := f.api("GET", "/api/v1/incidents/"+want["incident_id"], nil)
		if code != 200 {
			t.Fatalf("incident %s: %d %v", want["incident_id"], code, d)
		}
		if strconv.FormatFloat(d["score"].(float64), 'f', -1, 64) != want["score"] || fmt.Sprint(d["hit_count"]) != want["hit_count"] {
			t.Errorf("incident %s: score %v hits %v, host has %s and %s", want["incident_id"], d["score"], d["hit_count"], want["score"], want["hit_count"])
		}
		// Every hit of the incident arrived as a detection too.
		var gotHits []string
		for _, h := range d["hits"].([]any) {
			h := h.(map[string]any)
			gotHits = append(gotHits, h["hit_id"].(string))
			if len(h["detections"].([]any)) == 0 {
				t.Errorf("incident %s: hit %s has no detection", want["incident_id"], h["hit_id"])
			}
		}
		wantHits := strings.Split(want["hit_ids"], ",")
		sort.Strings(wantHits)
		if strings.Join(gotHits, ",") != strings.Join(wantHits, ",") {
			t.Errorf("incident %s: hits %v, want %v", want["incident_id"], gotHits, wantHits)
		}
		// The tree: the host's process_tree rows of the incident, each
		// with its parent in the tree (or at the top).
		var wantKeys []string
		for _, tr := range tree {
			if tr := tr.(map[string]string); tr["incident_id"] == want["incident_id"] {
				wantKeys = append(wantKeys, tr["process_key"])
			}
		}
		keys := map[string]bool{}
		var gotKeys []string
		techniques := 0
		for _, n := range d["tree"].([]any) {
			n := n.(map[string]any)
			gotKeys = append(gotKeys, n["process_key"].(string))
			keys[n["process_key"].(string)] = true
			techniques += len(n["techniques"].([]any))
		}
		for _, n := range d["tree"].([]any) {
			n := n.(map[string]any)
			if p := n["parent_key"].(string); (p == "") != (n["depth"] == float64(0)) || (p != "" && !keys[p]) {
				t.Errorf("incident %s: node %v has parent %q outside the tree", want["incident_id"], n["process_key"], p)
			}
		}
		sort.Strings(wantKeys)
		sort.Strings(gotKeys)
		if len(gotKeys) < 2 || strings.Join(gotKeys, "|") != strings.Join(wantKeys, "|") || techniques == 0 {
			t.Errorf("incident %s: tree %v (%d technique badges), want %v", want["incident_id"], gotKeys, techniques, wantKeys)
		}
	}
}

// queryStrings runs a query on the engine and returns its rows as osquery
// sends them: every column a string.
func queryStrings(t *testing.T, eng *sqlengine.Engine, query string) []map[string]string {
	t.Helper()
	rows, err := eng.Query(context.Background(), query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for i, c := range cols {
			m[c] = vals[i].String
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestUnknownHostFilter: a host filter naming no enrolled host matches
// nothing — on PostgreSQL too, which refuses a NUL byte in text (the
// filter's placeholder host ID once held one, and PostgreSQL answered an
// error).
func TestUnknownHostFilter(t *testing.T) {
	run := func(t *testing.T, st store.Store) {
		f := newFixture(t, st)
		key := f.enroll("host-a", "ubuntu")
		now := f.clock.Now()
		if code, _ := f.osquery("log", map[string]any{"node_key": key, "log_type": "result", "data": []any{
			resultItem(packs.QueryHits, now, 1, []any{hitRow("hit-1", "T1059.004", "execution", "high", now)}, nil),
			resultItem(packs.QueryIncidents, now, 1, []any{incidentRow("inc-1", 5, now, now, "hit-1")}, nil),
		}}); code != 200 {
			t.Fatal(code)
		}
		for _, path := range []string{"/api/v1/detections?host=nowhere", "/api/v1/incidents?host=nowhere"} {
			code, out := f.api("GET", path, nil)
			if code != 200 || out["total"] != float64(0) {
				t.Errorf("%s: %d %v, want 200 and nothing", path, code, out)
			}
		}
		if code, out := f.api("GET", "/api/v1/detections/summary?by=technique&host=nowhere", nil); code != 200 || len(out["buckets"].([]any)) != 0 {
			t.Errorf("summary for an unknown host: %d %v", code, out)
		}
		if code, _ := f.api("GET", "/api/v1/incidents/inc-1?host=nowhere", nil); code != 404 {
			t.Errorf("incident on an unknown host: %d, want 404", code)
		}
	}
	t.Run("SQLite", func(t *testing.T) { run(t, openSQLite(t)) })
	t.Run("PostgreSQL", func(t *testing.T) {
		dsn := os.Getenv("QUARRY_TEST_POSTGRES")
		if dsn == "" {
			t.Skip("PostgreSQL test skipped: QUARRY_TEST_POSTGRES is not set (.ci/run sets it)")
		}
		st, err := pgstore.Open(context.Background(), pgtest.Schema(t, dsn))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		run(t, st)
	})
}

// FuzzNodeActivity: whatever a host sends as a tree node's activity, the
// stored text is "" or JSON that parses again, within the bound, with no
// NUL byte and valid UTF-8.
func FuzzNodeActivity(f *testing.F) {
	f.Add(`{"network":{"count":5,"items":[{"time":1,"summary":"connect a\u0000b","eid":31,"techniques":["T1071"],"severity":"HIGH"}]}}`)
	f.Add(`{"file":null}`)
	f.Add(`{"x":{"count":-3,"items":[{}]}}`)
	f.Add("not json \x00\xff")
	f.Fuzz(func(t *testing.T, raw string) {
		got := nodeActivity(raw)
		if got == "" {
			return
		}
		if !validText(got) || len(got) > maxActivityJSON*2 {
			t.Fatalf("stored activity %q is not valid text or too long", got)
		}
		if _, err := activity.ParseProcessActivity(got); err != nil {
			t.Fatalf("stored activity %q does not parse: %v", got, err)
		}
	})
}
