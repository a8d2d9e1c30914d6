package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/fleet/web"
	"github.com/quarry-sec/quarry/telemetry"
)

// TestProcessTreePidReuse builds a tree from a host's process context in
// which pids were reused: the hit's parent is the process that held the
// pid when the hit started, exited processes stay in the tree, and
// processes outside the hit's ancestry and descendants are left out.
func TestProcessTreePidReuse(t *testing.T) {
	f := newFleet(t)
	ctx := context.Background()
	h := &store.Host{NodeKey: "nk", HostIdentifier: "web-01", Hostname: "web-01", Family: "linux", LastSeen: time.Now()}
	if err := f.st.EnrollHost(ctx, h); err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	type ev struct {
		eid, pid, parent int64
		at               int64 // seconds after base
		path, syscall    string
		exit             string
	}
	evs := []ev{
		{1, 1, 0, -1000, "/sbin/init", "execve", ""},
		{2, 100, 1, -100, "/bin/bash", "execve", ""},
		{3, 100, 1, -50, "/bin/bash", "exit", "0"},
		{11, 150, 100, -90, "/bin/ls", "execve", ""}, // the first pid 100's child
		{4, 100, 1, -40, "/usr/sbin/nginx", "execve", ""},
		{5, 200, 100, -30, "/bin/sh", "execve", ""}, // the hit
		{6, 300, 200, -20, "/usr/bin/curl", "execve", ""},
		{7, 300, 200, -19, "/usr/bin/curl", "exit", "6"},
		{8, 301, 999, -20, "/usr/bin/unrelated", "execve", ""},
		{9, 200, 555, 100, "/bin/late-reuse", "execve", ""},
	}
	var rs []store.Result
	for i, e := range evs {
		cols, _ := json.Marshal(map[string]string{"eid": fmt.Sprint(e.eid), "pid": fmt.Sprint(e.pid), "parent": fmt.Sprint(e.parent),
			"time": fmt.Sprint(base.Unix() + e.at), "path": e.path, "cmdline": e.path + " --arg", "username": "www-data",
			"syscall": e.syscall, "exit_code": e.exit})
		rs = append(rs, store.Result{Name: "pack_" + web.ProcessPackName + "_" + web.ProcessQuery, Query: web.ProcessQuery,
			Action: "added", Time: base, Counter: int64(i), Columns: cols})
	}
	ds := []store.Detection{
		{Hit: telemetry.Hit{HitID: "a", Time: base.Add(-30 * time.Second), RuleTitle: "Shell from nginx", TechniqueID: "T1059.004",
			TechniqueName: "Unix Shell", Tactic: "execution", Severity: "high", EID: 5, PID: 200, Path: "/bin/sh", ParentPath: "/usr/sbin/nginx"}},
		{Hit: telemetry.Hit{HitID: "b", Time: base.Add(-20 * time.Second), RuleTitle: "Download", TechniqueID: "T1105",
			TechniqueName: "Ingress Tool Transfer", Tactic: "command-and-control", Severity: "critical", EID: 6, PID: 300, Path: "/usr/bin/curl"}},
	}
	// The host's incident tree says what curl (start event 6) did.
	in := store.Incident{IncidentID: "inc-x", FirstSeen: base.Add(-30 * time.Second), LastSeen: base.Add(-20 * time.Second),
		Severity: "critical", HitCount: 2, HitIDs: []string{"a", "b"}, RootPID: 200, RootPath: "/bin/sh", Reported: base}
	curl := store.IncidentNode{IncidentID: "inc-x", ProcessKey: "k-curl", ParentKey: "k-sh", Depth: 1, PID: 300, EID: 6,
		Path: "/usr/bin/curl", Reported: base, Activity: `{"network":{"count":4,"items":[{"time":` + fmt.Sprint(base.Unix()) +
			`,"summary":"connect tcp 10.0.0.5:50000 -> 203.0.113.7:443","eid":12,"techniques":["T1071"],"severity":"high"}]}}`}
	if err := f.st.AppendLogs(ctx, h.ID, &store.LogBatch{Results: rs, Detections: ds, Incidents: []store.Incident{in},
		IncidentNodes: []store.IncidentNode{curl}}); err != nil {
		t.Fatal(err)
	}
	list, _, err := f.st.Detections(ctx, store.DetectionFilter{Techniques: []string{"T1059.004"}})
	if err != nil || len(list) != 1 {
		t.Fatalf("detections: %d, %v", len(list), err)
	}
	c := client(t)
	signIn(t, c, f.srv.URL, f.token)
	resp, body := get(t, c, fmt.Sprintf("%s/detections/%d", f.srv.URL, list[0].ID))
	if resp.StatusCode != http.StatusOK {
		t.Fatal(resp.Status)
	}
	i := strings.Index(body, `id="tree"`)
	if i < 0 {
		t.Fatal("no tree")
	}
	tree := body[i:]
	tree = tree[:strings.Index(tree, `class="raw"`)]
	var names []string
	for _, m := range regexp.MustCompile(`class="pname">([^<]+)<`).FindAllStringSubmatch(tree, -1) {
		names = append(names, m[1])
	}
	if got, want := strings.Join(names, " > "), "init > nginx > sh > curl"; got != want {
		t.Errorf("tree %q, want %q", got, want)
	}
	// The hit is marked, curl exited with its code, and each node carries
	// its detections' techniques coloured by severity.
	if !regexp.MustCompile(`class="node hit"[^>]*>\s*<span class="pname">sh<`).MatchString(tree) {
		t.Error("the hit's node is not marked")
	}
	if !strings.Contains(body, fmt.Sprintf(`href="/detections?host=%s&amp;since=`, h.ID)) {
		t.Error("no link to the host's detections around the hit")
	}
	if !strings.Contains(tree, "✕ exited (6)") {
		t.Error("curl's exit is not shown")
	}
	if !regexp.MustCompile(`class="tbadge sev-critical" href="/detections/\d+"[^>]*>T1105<`).MatchString(tree) ||
		!regexp.MustCompile(`class="tbadge sev-high" href="/detections/\d+"[^>]*>T1059.004<`).MatchString(tree) {
		t.Error("technique badges missing or not coloured by severity")
	}
	// curl's activity from the incident tree, under curl's node only.
	curlNode := tree[strings.Index(tree, `class="pname">curl<`):]
	if !strings.Contains(curlNode, `<span class="akind">network</span> <span class="muted">4</span><span class="tbadge sev-high"`) ||
		!strings.Contains(curlNode, "connect tcp 10.0.0.5:50000 -&gt; 203.0.113.7:443") || !strings.Contains(curlNode, "+3 more") {
		t.Errorf("curl's activity missing from the detection's tree:\n%s", curlNode)
	}
	if n := strings.Count(tree, `class="activity"`); n != 1 {
		t.Errorf("%d activity kinds in the tree, want curl's 1", n)
	}
}
