package sandbox

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

// TestReportCountsHits: a rule's Hits counts its hits, not its rows: a rule
// naming two techniques is stored as two rows per hit, and fired twice it
// is two hits.
func TestReportCountsHits(t *testing.T) {
	ctx := context.Background()
	st, err := eventstore.Open(filepath.Join(t.TempDir(), eventstore.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	kb, err := attack.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	var evs []telemetry.Event
	for i := range 2 {
		e := telemetry.NewEvent(telemetry.KindExec, telemetry.SourceSandbox)
		e.Host, e.PID, e.PPID, e.Path, e.RunID = "lab", int64(100+i), 1, "/usr/bin/curl", "run-1"
		e.Time, e.StartTime = start.Add(time.Duration(i)*time.Second), start.Add(time.Duration(i)*time.Second)
		evs = append(evs, e)
	}
	if _, err := st.Append(ctx, evs); err != nil {
		t.Fatal(err)
	}
	var eids []int64
	if err := st.Scan(ctx, eventstore.Filter{RunIDs: []string{"run-1"}}, func(e *eventstore.StoredEvent) bool {
		eids = append(eids, e.EID)
		return true
	}); err != nil || len(eids) != 2 {
		t.Fatalf("stored %d events: %v", len(eids), err)
	}
	var hits []telemetry.Hit
	for i, eid := range eids {
		for _, tech := range []string{"T1105", "T1071.001"} {
			hits = append(hits, telemetry.Hit{HitID: "hit-" + string(rune('a'+i)), Time: start, Host: "lab", RuleID: "r1",
				RuleTitle: "Download", RuleSource: "builtin", TechniqueID: tech, Severity: "medium", Confidence: "high", EID: eid})
		}
	}
	if _, err := st.SaveHits(ctx, hits, nil); err != nil {
		t.Fatal(err)
	}
	rep, err := BuildReport(ctx, st, kb, telemetry.SandboxRun{ID: "run-1", Started: start}, Result{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rules) != 1 || rep.Rules[0].Hits != 2 || len(rep.Rules[0].Techniques) != 2 {
		t.Fatalf("rules fired: %+v", rep.Rules)
	}
}
