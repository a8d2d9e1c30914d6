package incidents_test

import (
	"context"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/detections/incidents"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// execAt is an eBPF-like process start on host "lab" at t0+at.
func execAt(at time.Duration, pid, ppid int64, path, cmdline string) telemetry.Event {
	ev := telemetry.NewEvent(telemetry.KindExec, telemetry.SourceEBPF)
	ev.Host, ev.Category = "lab", "process_creation"
	ev.Time = t0.Add(at)
	ev.StartTime = ev.Time.Add(-time.Millisecond)
	ev.PID, ev.PPID, ev.Path, ev.Cmdline = pid, ppid, path, cmdline
	ev.Args = strings.Fields(cmdline)
	ev.Username, ev.UID, ev.EUID = "alice", 1000, 1000
	return ev
}

func exitAt(at time.Duration, pid int64) telemetry.Event {
	ev := telemetry.NewEvent(telemetry.KindExit, telemetry.SourceEBPF)
	ev.Host, ev.Time, ev.PID, ev.ExitCode = "lab", t0.Add(at), pid, 0
	return ev
}

const (
	decodeCmd  = "sh -c echo aWQ7d2hvYW1p | base64 -d | sh"
	crontabCmd = "/usr/bin/crontab /tmp/.job"
)

// hitsOf maps hit id → the pid of its process.
func hitPIDs(recs []telemetry.Hit) map[string]int64 {
	m := map[string]int64{}
	for _, r := range recs {
		m[r.HitID] = r.PID
	}
	return m
}

// incidentPIDs returns each incident's hit pids, sorted.
func incidentPIDs(incs []eventstore.IncidentRecord, pids map[string]int64) [][]int64 {
	var out [][]int64
	for _, in := range incs {
		var ps []int64
		for _, h := range in.HitIDs {
			ps = append(ps, pids[h])
		}
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
		out = append(out, ps)
	}
	return out
}

// A script (pid 100) decodes and runs a payload (pid 200), whose child 202
// writes a crontab; 200 exits and its pid is reused by an unrelated python
// (started by node, pid 300), whose child 201 also runs crontab. The child
// of the reused pid must not join the script's incident. Likewise pid 250,
// an ls of the script that exited, is later a process the store has no
// start of (a forked subshell), whose child 203 runs crontab: its parent is
// not the ls. Processes are told
// apart by pid and start time (eBPF), or without a start time (Security
// 4688, auditd) by the time of their start event and the exits.
func TestPIDReuse(t *testing.T) {
	for _, withStart := range []bool{true, false} {
		t.Run(map[bool]string{true: "start-time", false: "no-start-time"}[withStart], func(t *testing.T) {
			testPIDReuse(t, withStart)
		})
	}
}

func testPIDReuse(t *testing.T, withStart bool) {
	st := openStore(t)
	evs := []telemetry.Event{
		execAt(0, 100, 1, "/usr/bin/bash", "bash /tmp/stage.sh"),
		execAt(500*time.Millisecond, 250, 100, "/usr/bin/ls", "ls"),
		exitAt(600*time.Millisecond, 250),
		execAt(time.Second, 200, 100, "/usr/bin/sh", decodeCmd),
		execAt(1500*time.Millisecond, 202, 200, "/usr/bin/crontab", crontabCmd),
		exitAt(2*time.Second, 200),
		execAt(3500*time.Millisecond, 203, 250, "/usr/bin/crontab", crontabCmd),
		execAt(2500*time.Millisecond, 300, 1, "/usr/bin/node", "node /srv/app.js"),
		execAt(3*time.Second, 200, 300, "/usr/bin/python3", "python3 worker.py"),
		execAt(4*time.Second, 201, 200, "/usr/bin/crontab", crontabCmd),
	}
	if !withStart {
		for i := range evs {
			evs[i].StartTime = time.Time{}
		}
	}
	recs := storeEvents(t, st, evs)
	pids := hitPIDs(recs)
	if len(pids) != 4 {
		t.Fatalf("want 4 hits (decode, three crontabs), got %d: %+v", len(pids), recs)
	}
	incs := all(t, st)
	got := incidentPIDs(incs, pids)
	want := [][]int64{{200, 202}, {203}, {201}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("incidents by hit pid: got %v, want %v (%+v)", got, want, incs)
	}
	if incs[0].RootPID != 100 || incs[0].RootPath != "/usr/bin/bash" {
		t.Errorf("first incident's root: got pid %d %s, want the script (100, /usr/bin/bash)", incs[0].RootPID, incs[0].RootPath)
	}
	if incs[1].RootPID != 203 {
		t.Errorf("second incident's root: got pid %d %s, want the crontab itself (203)", incs[1].RootPID, incs[1].RootPath)
	}
	if incs[2].RootPID != 300 {
		t.Errorf("third incident's root: got pid %d %s, want node (300)", incs[2].RootPID, incs[2].RootPath)
	}
	// The tree of the reused pid's child goes up to python, not the script.
	g := incidents.NewGrouper(st, incidents.Options{})
	p, err := g.Resolver().ByPID(context.Background(), "lab", 201, t0.Add(5*time.Second))
	if err != nil || p == nil {
		t.Fatalf("process 201: %v %v", p, err)
	}
	par, err := g.Resolver().Parent(context.Background(), p)
	if err != nil || par == nil || par.Path != "/usr/bin/python3" {
		t.Fatalf("parent of 201: got %+v (%v), want python3", par, err)
	}
}

// Hits under one root join while each is within the window of another;
// a gap longer than the window starts a new incident.
func TestWindow(t *testing.T) {
	st := openStore(t)
	evs := []telemetry.Event{
		execAt(0, 100, 1, "/usr/bin/bash", "bash /tmp/stage.sh"),
		execAt(time.Minute, 200, 100, "/usr/bin/sh", decodeCmd),
		execAt(20*time.Minute, 201, 100, "/usr/bin/crontab", crontabCmd),
		// 100 started 55 min before this one: no longer an anchor, and the
		// last hit is 35 min after the previous one.
		execAt(55*time.Minute, 202, 100, "/usr/bin/crontab", crontabCmd),
	}
	recs := storeEvents(t, st, evs)
	got := incidentPIDs(all(t, st), hitPIDs(recs))
	want := [][]int64{{200, 201}, {202}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("incidents by hit pid: got %v, want %v", got, want)
	}
	// A window of an hour joins them all.
	if _, err := incidents.Rebuild(context.Background(), st, incidents.Options{Window: time.Hour}); err != nil {
		t.Fatal(err)
	}
	got = incidentPIDs(all(t, st), hitPIDs(recs))
	if want := [][]int64{{200, 201, 202}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("window 1h: got %v, want %v", got, want)
	}
}

// Hits arriving one at a time, in any order, give the incidents grouping
// them all at once gives, with the same ids.
func TestIncrementalSameAsBatch(t *testing.T) {
	evs := []telemetry.Event{
		execAt(0, 100, 1, "/usr/bin/bash", "bash /tmp/stage.sh"),
		execAt(time.Minute, 200, 100, "/usr/bin/sh", decodeCmd),
		execAt(2*time.Minute, 300, 1, "/usr/bin/bash", "bash /tmp/other.sh"),
		execAt(3*time.Minute, 301, 300, "/usr/bin/crontab", crontabCmd),
		execAt(4*time.Minute, 201, 100, "/usr/bin/crontab", crontabCmd),
	}
	batch := openStore(t)
	storeEvents(t, batch, evs)
	want := all(t, batch)
	if len(want) != 2 {
		t.Fatalf("want 2 incidents, got %+v", want)
	}

	ctx := context.Background()
	eng, kb := builtin(t)
	inc := openStore(t)
	// Store every event first, then feed the hits newest first.
	var recs []telemetry.Hit
	for _, ev := range evs {
		r, err := detectOnly(ctx, inc, eng, kb, ev)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r...)
	}
	for i := len(recs) - 1; i >= 0; i-- {
		if _, err := incidents.RefreshHits(ctx, inc, recs[i:i+1], incidents.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	if got := all(t, inc); !sameIncidents(got, want) {
		t.Fatalf("incremental:\n%+v\nbatch:\n%+v", got, want)
	}
}

func sameIncidents(a, b []eventstore.IncidentRecord) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		x.RootEID, y.RootEID = 0, 0 // eids depend on insertion order
		if !reflect.DeepEqual(x, y) {
			return false
		}
	}
	return true
}

func TestScoreRanksChainsAboveRepeats(t *testing.T) {
	// Ten crontab hits (three tactics each) against three hits whose
	// tactics add defense-evasion.
	st := openStore(t)
	evs := []telemetry.Event{execAt(0, 100, 1, "/usr/bin/bash", "bash /tmp/stage.sh")}
	for i := range 10 {
		evs = append(evs, execAt(time.Duration(i+1)*time.Second, int64(400+i), 100, "/usr/bin/crontab", crontabCmd))
	}
	repeats := storeEvents(t, st, evs)
	st2 := openStore(t)
	chainRecs := storeEvents(t, st2, []telemetry.Event{
		execAt(0, 100, 1, "/usr/bin/bash", "bash /tmp/stage.sh"),
		execAt(time.Second, 200, 100, "/usr/bin/sh", decodeCmd),
		execAt(2*time.Second, 201, 100, "/usr/bin/crontab", crontabCmd),
	})
	r, c := all(t, st), all(t, st2)
	if len(r) != 1 || len(c) != 1 || len(repeats) == 0 || len(chainRecs) == 0 {
		t.Fatalf("want one incident each: %+v / %+v", r, c)
	}
	nt := func(s string) int { return len(strings.Split(s, ",")) }
	if nt(c[0].Tactics) <= nt(r[0].Tactics) {
		t.Fatalf("the chain should span more tactics: %q vs %q", c[0].Tactics, r[0].Tactics)
	}
	if c[0].Score <= r[0].Score {
		t.Errorf("chain of %d hits over %s scores %.2f, not above %d repeats over %s (%.2f)",
			c[0].HitCount, c[0].Tactics, c[0].Score, r[0].HitCount, r[0].Tactics, r[0].Score)
	}
}

// logClearAt is a Security 1102 (log cleared) on host "lab" at t0+at: an
// event that names no process.
func logClearAt(at time.Duration) telemetry.Event {
	ev := telemetry.NewEvent(telemetry.KindOther, telemetry.SourceWindows)
	ev.Host, ev.Time, ev.Channel, ev.EventID = "lab", t0.Add(at), "Security", 1102
	ev.Fields.Set("EventID", "1102")
	ev.Fields.Set("Channel", "Security")
	ev.Fields.Set("SubjectUserName", "alice")
	return ev
}

// A hit with no process joins the incident of the nearest hit that has one,
// within the attach window; beyond it, it stands alone (and two such hits
// near each other stand together).
func TestHitsWithoutProcessAttach(t *testing.T) {
	st := openStore(t)
	recs := storeEvents(t, st, []telemetry.Event{
		execAt(0, 500, 1, "/bin/sh", decodeCmd),
		logClearAt(40 * time.Second), // joins the shell's incident
		logClearAt(20 * time.Minute), // far from any process hit: alone...
		logClearAt(21 * time.Minute), // ...with this one
	})
	byTime := map[string]time.Time{}
	for _, r := range recs {
		byTime[r.HitID] = r.Time
	}
	incs := all(t, st)
	if len(incs) != 2 {
		t.Fatalf("want 2 incidents, got %d: %+v", len(incs), incs)
	}
	var near, far *eventstore.IncidentRecord
	for i := range incs {
		if incs[i].RootPath == "/bin/sh" {
			near = &incs[i]
		} else {
			far = &incs[i]
		}
	}
	if near == nil || far == nil {
		t.Fatalf("incidents: %+v", incs)
	}
	if !strings.Contains(near.Techniques, "T1070.001") {
		t.Errorf("the log clear 40 s after the shell's hit is not in its incident: %+v", near)
	}
	if len(far.HitIDs) != 2 || far.RootPID != -1 {
		t.Errorf("the two later clears should be one incident without a process: %+v", far)
	}
	for _, id := range near.HitIDs {
		if byTime[id].Sub(t0) > time.Minute {
			t.Errorf("a hit of %s joined the shell's incident", byTime[id].Sub(t0))
		}
	}
}

// winExecAt is a Sysmon process start on host "dc1" at t0+at.
func winExecAt(at time.Duration, pid, ppid int64, path, cmdline, guid, parentGUID string) telemetry.Event {
	ev := telemetry.NewEvent(telemetry.KindExec, telemetry.SourceSysmon)
	ev.Host, ev.Category, ev.Channel, ev.EventID = "dc1", "process_creation", "Microsoft-Windows-Sysmon/Operational", 1
	ev.Time = t0.Add(at)
	ev.PID, ev.PPID, ev.Path, ev.Cmdline = pid, ppid, path, cmdline
	ev.ProcessGUID, ev.ParentGUID = guid, parentGUID
	ev.Username = `CORP\admin`
	return ev
}

// A service's process tree joins the incident of the hit on the service's
// installation (4697), which joined the installing client's: one incident
// from the client through the service to what the service ran.
func TestServiceJoinsItsInstaller(t *testing.T) {
	install := telemetry.NewEvent(telemetry.KindOther, telemetry.SourceWindows)
	install.Host, install.Time, install.Channel, install.EventID = "dc1", t0.Add(10*time.Second), "Security", 4697
	for k, v := range map[string]string{"EventID": "4697", "Channel": "Security", "ServiceName": "updsvc",
		"ServiceFileName": `C:\Users\Public\updsvc.exe`, "SubjectUserName": "admin"} {
		install.Fields.Set(k, v)
	}
	st := openStore(t)
	storeEvents(t, st, []telemetry.Event{
		winExecAt(-time.Hour, 600, 4, `C:\Windows\System32\services.exe`, `C:\Windows\system32\services.exe`, "{s}", ""),
		winExecAt(0, 900, 880, `C:\Windows\System32\reg.exe`, `reg.exe save HKLM\SAM C:\Users\Public\s.hiv`, "{c}", "{x}"),
		install,
		// The service starts three minutes later: beyond the attach window,
		// joined only as the installed service.
		winExecAt(3*time.Minute, 1200, 600, `C:\Users\Public\updsvc.exe`, `C:\Users\Public\updsvc.exe`, "{u}", "{s}"),
		winExecAt(3*time.Minute+time.Second, 1300, 1200, `C:\Windows\System32\reg.exe`, `reg.exe save HKLM\SECURITY C:\Users\Public\y.hiv`, "{r}", "{u}"),
	})
	incs := all(t, st)
	if len(incs) != 1 {
		for _, in := range incs {
			t.Logf("%s root %s: %s", in.IncidentID, in.RootPath, in.Summary)
		}
		t.Fatalf("want 1 incident (client, installation, service), got %d", len(incs))
	}
	if incs[0].HitCount < 3 {
		t.Fatalf("the incident holds %d hits: %+v", incs[0].HitCount, incs[0])
	}
}

// The tree of an incident whose hits name no process is its root standing
// for them: that node carries their hits, techniques and severity, as the
// incident does (it showed a bare "?" with no hit).
func TestTreeOfIncidentWithoutProcess(t *testing.T) {
	st := openStore(t)
	storeEvents(t, st, []telemetry.Event{logClearAt(0), logClearAt(time.Minute)})
	incs := all(t, st)
	if len(incs) != 1 || incs[0].RootPID != -1 {
		t.Fatalf("want one incident without a process: %+v", incs)
	}
	tree, ok, err := incidents.TreeOfIncident(context.Background(), st, incs[0].IncidentID)
	if err != nil || !ok {
		t.Fatalf("tree: ok %v, %v", ok, err)
	}
	if len(tree.Nodes) != 1 {
		t.Fatalf("want the root alone, got %d nodes", len(tree.Nodes))
	}
	n := tree.Nodes[0]
	if len(n.Hits) != 2 || !slices.Contains(n.Techniques, "T1070.001") || n.Severity != "high" {
		t.Errorf("root node: %d hit(s), techniques %v, severity %q; want the incident's 2 hits, T1070.001, high",
			len(n.Hits), n.Techniques, n.Severity)
	}
}
