package pipeline_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/detections/pipeline"
	"github.com/quarry-sec/quarry/detections/ruleset"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/collect"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

// TestLiveChainIsOneIncident runs a scripted chain of Linux commands under
// the live collector — decode → shell → discovery burst → cron persistence
// — and expects one incident holding all of its hits within 5 s. The
// "crontab" is a copy of /bin/true in a temporary folder, so no crontab is
// touched. Needs root.
func TestLiveChainIsOneIncident(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: the live collector needs root")
	}
	kb, err := attack.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	res, err := ruleset.Load(ruleset.Config{Builtin: true, KB: kb})
	if err != nil {
		t.Fatal(err)
	}
	corr, errs := detections.NewCorrelator(res.Rules)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	dir := t.TempDir()
	st, err := eventstore.Open(filepath.Join(dir, "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p := pipeline.New(st, detections.NewEngine(res.Rules), pipeline.Options{KB: kb, Correlation: corr})
	ctx, cancel := context.WithCancel(context.Background())
	// Only the test's own descendants reach the pipeline: the collector
	// sees the whole machine, and a busy one (builds, other tests) would
	// bury the chain under its own hits and slow the test to a crawl.
	var mu sync.Mutex
	ours := map[int64]bool{int64(os.Getpid()): true}
	c, err := collect.Start(ctx, collect.Options{}, func(ev telemetry.Event) {
		mu.Lock()
		if ev.Kind == telemetry.KindExec && ours[ev.PPID] {
			ours[ev.PID] = true
		}
		mine := ours[ev.PID]
		mu.Unlock()
		if mine {
			p.Add(ev)
		}
	})
	if err != nil {
		cancel()
		t.Skipf("skipping: no live source: %v", err)
	}
	defer func() { cancel(); c.Wait(); p.Close() }()

	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	truePath, err := exec.LookPath("true")
	if err != nil {
		t.Skip("no true(1)")
	}
	b, err := os.ReadFile(truePath)
	if err != nil {
		t.Fatal(err)
	}
	crontab := filepath.Join(bin, "crontab")
	if err := os.WriteFile(crontab, b, 0o755); err != nil {
		t.Fatal(err)
	}
	marker := fmt.Sprintf("qinc-%d-%d", os.Getpid(), time.Now().UnixNano())
	payload := base64.StdEncoding.EncodeToString([]byte(
		"whoami >/dev/null; id >/dev/null; uname -a >/dev/null; hostname >/dev/null; " + crontab + " " + dir + "/" + marker + ".job\n"))
	script := filepath.Join(dir, "stage.sh")
	if err := os.WriteFile(script, []byte("#!/bin/bash\nsh -c 'echo "+payload+" | base64 -d | sh'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the collector is attached
	if out, err := exec.Command("/bin/bash", script, marker).CombinedOutput(); err != nil {
		t.Fatalf("chain: %v\n%s", err, out)
	}
	done := time.Now()

	// The chain's hits: the decode, the crontab, the discovery burst.
	want := map[string]string{
		"base64 -d":  "decode piped to a shell",
		marker:       "crontab",
		"(discover)": "discovery burst correlation",
	}
	var found map[string]string // what → hit id
	var incident string
	for time.Since(done) < 5*time.Second {
		time.Sleep(50 * time.Millisecond)
		found = map[string]string{}
		st.ScanHits(context.Background(), eventstore.HitFilter{Since: done.Add(-time.Minute)}, func(h *telemetry.Hit) bool {
			switch {
			case h.RuleSource == "correlation" && strings.Contains(strings.ToLower(h.RuleTitle), "discovery") && h.Path != "" &&
				strings.Contains(h.Cmdline+h.Path, "hostname"):
				found["(discover)"] = h.HitID
			case h.RuleSource != "correlation" && strings.Contains(h.Cmdline, "base64 -d") && strings.Contains(h.Cmdline, payload):
				found["base64 -d"] = h.HitID
			case h.RuleSource != "correlation" && strings.Contains(h.Cmdline, marker):
				found[marker] = h.HitID
			}
			return true
		})
		if len(found) < len(want) {
			continue
		}
		ids := []string{found["base64 -d"], found[marker], found["(discover)"]}
		// Every one of the chain's hits must be paired, and all with one
		// incident: a hit not yet correlated has no pair at all.
		incs := map[string]bool{}
		paired := map[string]bool{}
		st.ScanIncidentHits(context.Background(), nil, ids, func(p eventstore.IncidentHitPair) bool {
			incs[p.IncidentID] = true
			paired[p.HitID] = true
			incident = p.IncidentID
			return true
		})
		if len(incs) == 1 && len(paired) == len(ids) {
			break
		}
		incident = ""
	}
	for k, what := range want {
		if found[k] == "" {
			t.Errorf("no %s hit within 5 s", what)
		}
	}
	if incident == "" {
		t.Fatalf("the chain's hits %v are not one incident within 5 s", found)
	}
	t.Logf("one incident %s %v after the chain ended", incident, time.Since(done).Round(time.Millisecond))
	var rec eventstore.IncidentRecord
	st.ScanIncidents(context.Background(), eventstore.IncidentFilter{IncidentIDs: []string{incident}}, func(r *eventstore.IncidentRecord) bool {
		rec = *r
		return false
	})
	for _, tac := range []string{"defense-evasion", "discovery", "persistence"} {
		if !strings.Contains(rec.Tactics, tac) {
			t.Errorf("incident tactics %s lack %s", rec.Tactics, tac)
		}
	}
	t.Logf("%+v", rec)
}
