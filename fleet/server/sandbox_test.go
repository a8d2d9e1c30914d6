package server

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/detections/packs"
	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/fleet/store/pgstore"
	"github.com/quarry-sec/quarry/internal/pgtest"
)

// sandboxRow is a quarry_sandbox_runs row as a host sends it.
func sandboxRow(id, verdict string, started time.Time, techniques string) map[string]string {
	tree, _ := json.Marshal([]map[string]any{
		{"depth": 0, "relation": "self", "process_key": "k-sh", "parent_key": "", "node_pid": 10, "node_ppid": 1,
			"path": "/bin/sh", "cmdline": "sh /tmp/sample", "start_time": started.Unix(), "hit_count": 0, "techniques": ""},
		{"depth": 1, "relation": "descendant", "process_key": "k-curl", "parent_key": "k-sh", "node_pid": 11, "node_ppid": 10,
			"path": "/usr/bin/curl", "cmdline": "curl http://198.18.0.1/x\u0000", "start_time": started.Unix(), "hit_count": 1,
			"techniques": "T1105", "severity": "high",
			"activity": `{"network":{"count":1,"items":[{"time":1,"summary":"connect 198.18.0.1:80","eid":3,"techniques":["T1105"]}]}}`},
		{"depth": 1, "process_key": "k-curl", "path": "/dup"}, // a repeated key: dropped
		{"depth": 2, "path": "/no/key"},                       // no key: dropped
	})
	return map[string]string{"run_id": id, "origin": "detonate", "host_identifier": "lab", "sample": "dropper.sh",
		"sha256": strings.Repeat("A", 64), "sha1": "", "md5": "", "size": "120", "started": fmt.Sprint(started.Unix()),
		"duration_ms": "1500", "verdict": verdict, "score": "8.5", "techniques": techniques, "tactics": "TA0002,TA0011",
		"tree":    string(tree),
		"files":   `[{"path":"/tmp/x","actions":["write"],"process":"/usr/bin/curl","sha256":"AB","size":3}]`,
		"network": `[{"kind":"connect","dest":"198.18.0.1:80","process":"/usr/bin/curl"}]`,
		"rules": `[{"id":"r1","title":"Download with curl","source":"builtin","author":"Quarry","severity":"HIGH",` +
			`"description":"Fetches a file","recommendations":"Block the domain","techniques":["t1105"],"hits":1}]`}
}

// TestSandboxLogsAndAPI: quarry_sandbox_runs rows become fleet sandbox
// runs (tree, files, network and rules decoded and bounded, a NUL made
// storable); the analyst API lists and filters them and shows one whole.
// On SQLite, and on PostgreSQL when QUARRY_TEST_POSTGRES is set.
func TestSandboxLogsAndAPI(t *testing.T) {
	t.Run("SQLite", func(t *testing.T) { testSandboxLogsAndAPI(t, openSQLite(t)) })
	t.Run("PostgreSQL", func(t *testing.T) {
		dsn := os.Getenv("QUARRY_TEST_POSTGRES")
		if dsn == "" {
			t.Skip("PostgreSQL sandbox test skipped: QUARRY_TEST_POSTGRES is not set (.ci/run sets it)")
		}
		st, err := pgstore.Open(context.Background(), pgtest.Schema(t, dsn))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		testSandboxLogsAndAPI(t, st)
	})
}

func testSandboxLogsAndAPI(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	key := f.enroll("host-a", "ubuntu")
	keyB := f.enroll("host-b", "ubuntu")
	now := f.clock.Now()
	if code, out := f.osquery("log", map[string]any{"node_key": key, "log_type": "result", "data": []any{
		resultItem(packs.QuerySandboxRuns, now, 1, []any{
			sandboxRow("run-1", "malicious", now.Add(-time.Hour), "T1059.004,T1105"),
			sandboxRow("run-2", "clean", now.Add(-2*time.Hour), ""),
			map[string]string{"run_id": "", "verdict": "clean"}, // no id: not a run
		}, nil),
	}}); code != 200 {
		t.Fatalf("log: %d %v", code, out)
	}
	if code, _ := f.osquery("log", map[string]any{"node_key": keyB, "log_type": "result", "data": []any{
		resultItem(packs.QuerySandboxRuns, now, 1, []any{sandboxRow("run-9", "suspicious", now.Add(-3*time.Hour), "T1033")}, nil),
	}}); code != 200 {
		t.Fatal(code)
	}
	ids := func(out map[string]any) string {
		var s []string
		for _, r := range out["runs"].([]any) {
			m := r.(map[string]any)
			s = append(s, fmt.Sprint(m["run_id"], "@", m["host_identifier"]))
		}
		return strings.Join(s, " ")
	}
	for _, tc := range []struct {
		query, want string
		total       float64
	}{
		{"", "run-1@host-a run-2@host-a run-9@host-b", 3},
		{"host=host-b", "run-9@host-b", 1},
		{"verdict=malicious,suspicious", "run-1@host-a run-9@host-b", 2},
		{"technique=T1059", "run-1@host-a", 1},
		{"since=" + now.Add(-90*time.Minute).UTC().Format(time.RFC3339), "run-1@host-a", 1},
		{"limit=1&offset=1", "run-2@host-a", 3},
	} {
		code, out := f.api("GET", "/api/v1/sandbox/runs?"+tc.query, nil)
		if code != 200 || ids(out) != tc.want || out["total"] != tc.total {
			t.Errorf("runs?%s: %d %v, want %q (%v)", tc.query, code, out, tc.want, tc.total)
		}
	}
	if code, out := f.api("GET", "/api/v1/sandbox/runs?verdict=evil", nil); code != 400 {
		t.Errorf("bad verdict: %d %v", code, out)
	}
	code, out := f.api("GET", "/api/v1/sandbox/runs/host-a/run-1", nil)
	if code != 200 {
		t.Fatalf("run: %d %v", code, out)
	}
	b, _ := json.Marshal(out)
	var run store.SandboxRun
	if err := json.Unmarshal(b, &run); err != nil {
		t.Fatal(err)
	}
	if run.Verdict != "malicious" || run.Score != 8.5 || run.SHA256 != strings.Repeat("a", 64) || run.Duration != 1500*time.Millisecond ||
		run.HostIdentifier != "host-a" || len(run.Tree) != 2 || run.Tree[1].ParentKey != "k-sh" ||
		run.Tree[1].Cmdline != `curl http://198.18.0.1/x`+NULEscape || run.Tree[1].Techniques[0] != "T1105" ||
		!strings.Contains(run.Tree[1].Activity, "198.18.0.1:80") ||
		len(run.Files) != 1 || run.Files[0].SHA256 != "ab" || len(run.Network) != 1 || run.Network[0].Dest != "198.18.0.1:80" ||
		len(run.Rules) != 1 || run.Rules[0].Severity != "high" || run.Rules[0].Recommendations != "Block the domain" ||
		run.Rules[0].Techniques[0] != "T1105" {
		t.Errorf("run = %+v", run)
	}
	if code, _ := f.api("GET", "/api/v1/sandbox/runs/host-b/run-1", nil); code != 404 {
		t.Errorf("another host's run: %d, want 404", code)
	}
}

// FuzzSandboxRun: whatever a host sends as a sandbox run's row, the run
// read is bounded and, once cleaned as every log batch is, its text is
// storable (no NUL, valid UTF-8).
func FuzzSandboxRun(f *testing.F) {
	row, _ := json.Marshal(sandboxRow("run-1", "malicious", time.Unix(1700000000, 0), "T1105"))
	f.Add(string(row))
	f.Add(`{"run_id":"x","tree":"[{\"process_key\":\"a\u0000\",\"node_pid\":1e300}]","files":"[{\"path\":null}]","score":"NaN"}`)
	f.Add(`{"run_id":"x","rules":"{}","network":"[1,2]","tree":"not json \u00ff"}`)
	f.Fuzz(func(t *testing.T, raw string) {
		run, ok := sandboxRun(json.RawMessage(raw), time.Unix(1700000000, 0))
		if !ok {
			return
		}
		if len(run.Tree) > maxRunNodes || len(run.Files) > maxRunFiles || len(run.Network) > maxRunDests ||
			len(run.Rules) > maxRunRules || run.Score < 0 || run.Score > 10 || run.Score != run.Score {
			t.Fatalf("unbounded run: %d nodes, %d files, %d dests, %d rules, score %v", len(run.Tree), len(run.Files),
				len(run.Network), len(run.Rules), run.Score)
		}
		b := store.LogBatch{SandboxRuns: []store.SandboxRun{run}}
		cleanStrings(&b)
		enc, err := json.Marshal(b.SandboxRuns[0])
		if err != nil || !validText(string(enc)) || strings.Contains(string(enc), `\u0000`) {
			t.Fatalf("run %q does not store as text: %v", enc, err)
		}
	})
}
