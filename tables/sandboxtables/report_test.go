package sandboxtables_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/extension/sqlengine"
	"github.com/quarry-sec/quarry/tables"
	"github.com/quarry-sec/quarry/tables/activity"
	"github.com/quarry-sec/quarry/tables/sandboxtables"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

// The tree, files, network and rules columns carry a detonation's report
// (its tree as process_tree rows, with the store's activity of each
// process) and an imported report's summary, in one shape.
func TestSandboxRunParts(t *testing.T) {
	ctx := context.Background()
	st, err := eventstore.Open(filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sh := telemetry.NewEvent(telemetry.KindExec, telemetry.SourceSandbox)
	sh.Host, sh.Time, sh.StartTime, sh.PID, sh.PPID, sh.Path, sh.Cmdline, sh.RunID = "lab", t0, t0, 10, 1, "/bin/sh", "sh /tmp/sample", "run-d"
	curl := telemetry.NewEvent(telemetry.KindExec, telemetry.SourceSandbox)
	curl.Host, curl.Time, curl.StartTime, curl.PID, curl.PPID, curl.Path, curl.Cmdline, curl.RunID = "lab", t0.Add(time.Second), t0.Add(time.Second), 11, 10, "/usr/bin/curl", "curl http://198.18.0.1/x", "run-d"
	conn := telemetry.NewEvent(telemetry.KindOther, telemetry.SourceSandbox)
	conn.Host, conn.Time, conn.PID, conn.Path, conn.Category, conn.RunID = "lab", t0.Add(2*time.Second), 11, "/usr/bin/curl", "network_connection", "run-d"
	conn.StartTime = curl.StartTime
	conn.Fields = telemetry.FieldsFromMap(map[string]string{"Initiated": "true", "Action": "connect", "DestinationIp": "198.18.0.1", "DestinationPort": "80"})
	if _, err := st.Append(ctx, []telemetry.Event{sh, curl, conn}); err != nil {
		t.Fatal(err)
	}
	keys := map[int64]string{}
	if err := st.Scan(ctx, eventstore.Filter{RunIDs: []string{"run-d"}}, func(e *eventstore.StoredEvent) bool {
		if e.Kind == telemetry.KindExec {
			keys[e.PID] = e.ProcessKey
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	det := map[string]any{
		"tree": []any{map[string]any{"pid": 10, "ppid": 1, "time": t0.Format(time.RFC3339), "path": "/bin/sh", "cmdline": "sh /tmp/sample",
			"process_key": keys[10], "children": []any{map[string]any{"pid": 11, "ppid": 10, "path": "/usr/bin/curl",
				"cmdline": "curl http://198.18.0.1/x", "techniques": []string{"T1105", "T1105"}, "process_key": keys[11],
				"activity": map[string]int{"network_connection": 1}}}}},
		"files":   []any{map[string]any{"path": "/tmp/x", "actions": []string{"write"}, "process": "/usr/bin/curl", "sha256": "ab", "size": 3}},
		"network": []any{map[string]any{"kind": "connect", "dest": "198.18.0.1:80", "process": "/usr/bin/curl", "sink": []any{}}},
		"rules": []any{map[string]any{"id": "r1", "title": "Download with curl", "source": "builtin", "author": "Quarry",
			"severity": "high", "description": "d", "recommendations": "block", "techniques": []string{"T1105"}, "hits": 1}},
	}
	cape := map[string]any{"origin": "cape", "verdict": "malicious", "task_id": "7",
		"tree": []any{map[string]any{"pid": 500, "ppid": 4, "name": "a.exe", "time": t0.Format(time.RFC3339), "process_key": "g:win10-cape-01/g1"}},
		"network": []any{map[string]any{"kind": "domain", "dest": "evil.example"}, map[string]any{"kind": "tcp", "dest": "10.0.0.1:1 -> 10.0.0.2:443"},
			map[string]any{"kind": "dns", "dest": "evil.example", "answers": []string{"10.0.0.2"}}},
		"files": []any{map[string]any{"path": "C:\\b.dll", "actions": []string{"dropped"}, "size": 9, "sha256": "cd"}},
		"rules": []any{map[string]any{"id": "injection", "title": "injection", "source": "cape", "description": "injects", "severity": "high",
			"techniques": []string{"T1055"}, "families": []string{"emotet"}, "hits": 1}}}
	for id, rep := range map[string]any{"run-d": det, "cape-1": cape} {
		b, _ := json.Marshal(rep)
		if err := st.PutSandboxRun(ctx, telemetry.SandboxRun{ID: id, Origin: "detonate", Host: "lab", Started: t0, Report: b}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.PutSandboxRun(ctx, telemetry.SandboxRun{ID: "bare", Origin: "detonate", Host: "lab", Started: t0}); err != nil {
		t.Fatal(err)
	}
	reg := tables.NewRegistry()
	if err := reg.Register(append(activity.Tables(st), sandboxtables.Runs(st))...); err != nil {
		t.Fatal(err)
	}
	e, err := sqlengine.Open(reg)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	got := query(t, e, "SELECT run_id, tree, files, network, rules FROM sandbox_runs ORDER BY run_id")
	if len(got) != 3 || got[0][0] != "bare" || got[0][1] != "<nil>" || got[0][4] != "<nil>" {
		t.Fatalf("rows %v", got)
	}
	var tree []sandboxtables.TreeNode
	if err := json.Unmarshal([]byte(got[2][1]), &tree); err != nil {
		t.Fatalf("tree %q: %v", got[2][1], err)
	}
	if len(tree) != 2 || tree[0].ProcessKey != keys[10] || tree[0].Relation != "self" || tree[1].ParentKey != keys[10] ||
		tree[1].Depth != 1 || tree[1].Techniques != "T1105" || tree[1].HitCount != 1 || tree[1].Severity != "high" ||
		tree[0].Start != t0.Unix() {
		t.Errorf("tree %+v", tree)
	}
	a, err := activity.ParseProcessActivity(tree[1].Activity)
	if err != nil || a["network"] == nil || len(a["network"].Items) != 1 || !strings.Contains(a["network"].Items[0].Summary, "198.18.0.1") {
		t.Errorf("curl's activity %q (%v): want the store's network item", tree[1].Activity, err)
	}
	var files []telemetry.SandboxFile
	var dests []telemetry.SandboxDestination
	var rules []telemetry.SandboxRule
	for i, v := range []any{&files, &dests, &rules} {
		if err := json.Unmarshal([]byte(got[2][2+i]), v); err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(files, []telemetry.SandboxFile{{Path: "/tmp/x", Actions: []string{"write"}, Process: "/usr/bin/curl", SHA256: "ab", Size: 3}}) ||
		!reflect.DeepEqual(dests, []telemetry.SandboxDestination{{Kind: "connect", Dest: "198.18.0.1:80", Process: "/usr/bin/curl"}}) ||
		len(rules) != 1 || rules[0].Title != "Download with curl" || rules[0].Recommendations != "block" || rules[0].Author != "Quarry" {
		t.Errorf("files %+v\nnetwork %+v\nrules %+v", files, dests, rules)
	}
	// The import.
	tree, files, dests, rules = nil, nil, nil, nil
	for i, v := range []any{&tree, &files, &dests, &rules} {
		if err := json.Unmarshal([]byte(got[1][1+i]), v); err != nil {
			t.Fatalf("cape column %d %q: %v", i, got[1][1+i], err)
		}
	}
	if len(tree) != 1 || tree[0].Path != "a.exe" || tree[0].ProcessKey != "g:win10-cape-01/g1" || tree[0].Start != t0.Unix() ||
		len(files) != 1 || files[0].Path != `C:\b.dll` || files[0].Actions[0] != "dropped" ||
		!reflect.DeepEqual(dests, []telemetry.SandboxDestination{{Kind: "domain", Dest: "evil.example"}, {Kind: "tcp", Dest: "10.0.0.1:1 -> 10.0.0.2:443"},
			{Kind: "dns", Dest: "evil.example", Answers: []string{"10.0.0.2"}}}) ||
		len(rules) != 1 || rules[0].Severity != "high" || rules[0].Source != "cape" || rules[0].Techniques[0] != "T1055" ||
		rules[0].Families[0] != "emotet" {
		t.Errorf("cape: tree %+v files %+v network %+v rules %+v", tree, files, dests, rules)
	}
}
