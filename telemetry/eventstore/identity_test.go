package eventstore

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/telemetry"
)

func sysmonExec(pid int64, guid, path string, t time.Time) telemetry.Event {
	e := telemetry.NewEvent(telemetry.KindExec, telemetry.SourceSysmon)
	e.Time, e.Host, e.Category, e.EventID = t, "WS5", "process_creation", 1
	e.Channel = "Microsoft-Windows-Sysmon/Operational"
	e.PID, e.PPID = pid, 5888
	e.Path, e.Cmdline, e.ProcessGUID = path, path+" /x", guid
	e.ParentPath = `C:\Windows\System32\cmd.exe`
	e.Hashes = "SHA256=AB"
	e.Fields = telemetry.FieldsFromMap(map[string]string{"EventID": "1", "Image": path, "UtcTime": t.Format("2006-01-02 15:04:05.000")})
	return e
}

func securityExec(pid, ppid int64, path string, t time.Time) telemetry.Event {
	e := telemetry.NewEvent(telemetry.KindExec, telemetry.SourceSecurity)
	e.Time, e.Host, e.Category, e.EventID, e.Channel = t, "WS5", "process_creation", 4688, "Security"
	e.PID, e.PPID = pid, ppid
	e.Path, e.Cmdline = path, path+" /x"
	e.Username = `LAB\pgustavo`
	e.Fields = telemetry.FieldsFromMap(map[string]string{"EventID": "4688", "NewProcessName": path, "TokenElevationType": "%%1938"})
	return e
}

func sysmonOther(pid int64, guid string, t time.Time) telemetry.Event {
	e := telemetry.NewEvent(telemetry.KindOther, telemetry.SourceSysmon)
	e.Time, e.Host, e.Category, e.EventID = t, "WS5", "network_connection", 3
	e.Channel = "Microsoft-Windows-Sysmon/Operational"
	e.PID, e.ProcessGUID = pid, guid
	e.Fields = telemetry.FieldsFromMap(map[string]string{"EventID": "3", "DestinationIp": "10.0.0.1"})
	return e
}

func count(t *testing.T, s *Store, q string, args ...any) int {
	t.Helper()
	var n int
	if err := s.write.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// The same records stored again (the same batch, a batch overlapping it, or
// the same record twice in one batch) are stored once.
func TestStoreBatchIdempotent(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	evs := make([]telemetry.Event, 50)
	for i := range evs {
		evs[i] = sampleEvent(i)
	}
	res, err := s.StoreBatch(ctx, evs, nil)
	if err != nil || res.New != 50 {
		t.Fatalf("%+v %v", res, err)
	}
	again := append(append([]telemetry.Event{}, evs[25:]...), sampleEvent(50), sampleEvent(50))
	res2, err := s.StoreBatch(ctx, again, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res2.New != 1 || res2.Already != 26 {
		t.Fatalf("second batch: %d new, %d already", res2.New, res2.Already)
	}
	if res2.Stored[0].EID != res.Stored[25].EID || res2.Stored[26].EID != res2.Stored[25].EID {
		t.Fatalf("already stored events should name their rows: %+v", res2.Stored)
	}
	if evs[30].ProcessKey == "" || again[5].ProcessKey != evs[30].ProcessKey {
		t.Fatalf("process key %q, again %q", evs[30].ProcessKey, again[5].ProcessKey)
	}
	if n, _ := s.Count(ctx); n != 51 {
		t.Fatalf("%d events stored, want 51", n)
	}
}

// A Sysmon EID 1 and a Security 4688 of one process are one row, whichever
// comes first, in one batch or two; the other events of the process carry
// its key.
func TestStoreBatchMergesSources(t *testing.T) {
	t1 := time.Date(2020, 10, 22, 6, 57, 59, 855e6, time.UTC)
	for _, order := range []string{"sysmon first", "4688 first", "two batches"} {
		t.Run(order, func(t *testing.T) {
			s := openTemp(t)
			ctx := context.Background()
			sy := sysmonExec(10980, "{39E4A257-2D77-5F91-6B13-000000000700}", `C:\Windows\System32\mshta.exe`, t1)
			sec := securityExec(10980, 5888, `C:\Windows\System32\mshta.exe`, t1.Add(time.Millisecond))
			net := sysmonOther(10980, "{39e4a257-2d77-5f91-6b13-000000000700}", t1.Add(time.Second))
			var batches [][]telemetry.Event
			switch order {
			case "sysmon first":
				batches = [][]telemetry.Event{{sy, sec, net}}
			case "4688 first":
				batches = [][]telemetry.Event{{sec, sy, net}}
			default:
				batches = [][]telemetry.Event{{sec}, {net}, {sy}}
			}
			var keys []string
			for _, b := range batches {
				if _, err := s.StoreBatch(ctx, b, nil); err != nil {
					t.Fatal(err)
				}
				for _, e := range b {
					keys = append(keys, e.ProcessKey)
				}
			}
			execs := collect(t, s, Filter{Kinds: []int64{int64(telemetry.KindExec)}})
			if len(execs) != 1 {
				t.Fatalf("%d process start rows, want 1: %+v", len(execs), execs)
			}
			x := execs[0]
			if x.Source != "security4688,sysmon" || x.Username != `LAB\pgustavo` || x.Hashes != "SHA256=AB" ||
				x.ProcessGUID == "" || x.Field("TokenElevationType") != "%%1938" || x.Field("UtcTime") == "" {
				t.Fatalf("merged row: %+v", x)
			}
			for _, k := range keys {
				if k != x.ProcessKey {
					t.Fatalf("keys %v, row's %q", keys, x.ProcessKey)
				}
			}
			if order != "two batches" {
				// The merged record is already stored.
				res, err := s.StoreBatch(ctx, []telemetry.Event{securityExec(10980, 5888, `C:\Windows\System32\mshta.exe`, t1.Add(time.Millisecond))}, nil)
				if err != nil || res.Already != 1 || res.Stored[0].EID != x.EID {
					t.Fatalf("%+v %v", res, err)
				}
			}
			if got := collect(t, s, Filter{Sources: []string{"security4688"}}); len(got) != 1 {
				t.Fatalf("source filter finds %d rows", len(got))
			}
			if n := count(t, s, "SELECT count(*) FROM processes"); n != 1 {
				t.Fatalf("%d processes", n)
			}
		})
	}
}

// Two processes that only share a pid are not merged: a start of the same
// source, or starts further apart than MergeWindow.
func TestStoreBatchPIDReuse(t *testing.T) {
	s := openTemp(t)
	t1 := time.Date(2020, 10, 22, 6, 0, 0, 0, time.UTC)
	evs := []telemetry.Event{
		securityExec(400, 4, `C:\a.exe`, t1),
		securityExec(400, 4, `C:\b.exe`, t1.Add(time.Millisecond)),
		sysmonExec(400, "{aaaa}", `C:\c.exe`, t1.Add(time.Minute)),
	}
	if _, err := s.StoreBatch(context.Background(), evs, nil); err != nil {
		t.Fatal(err)
	}
	if evs[0].ProcessKey == evs[1].ProcessKey || evs[1].ProcessKey == evs[2].ProcessKey {
		t.Fatalf("keys %q %q %q", evs[0].ProcessKey, evs[1].ProcessKey, evs[2].ProcessKey)
	}
	if n := count(t, s, "SELECT count(*) FROM events"); n != 3 {
		t.Fatalf("%d rows", n)
	}
}

// A Linux event names the process that had its pid then; one of a process
// not seen yet gets a key of its own, which its start, stored later, takes.
func TestStoreBatchActors(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	linux := func(kind telemetry.Kind, pid int64, t time.Time) telemetry.Event {
		e := telemetry.NewEvent(kind, telemetry.SourceAuditd)
		e.Time, e.Host, e.PID, e.PPID, e.Path = t, "lin", pid, 1, "/bin/x"
		return e
	}
	t1 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	first := []telemetry.Event{
		linux(telemetry.KindExec, 100, t1),
		linux(telemetry.KindOther, 100, t1.Add(time.Second)),
		linux(telemetry.KindExit, 100, t1.Add(2*time.Second)),
		linux(telemetry.KindExec, 100, t1.Add(time.Hour)), // pid reused
		linux(telemetry.KindOther, 100, t1.Add(time.Hour+time.Second)),
		linux(telemetry.KindOther, 200, t1.Add(5*time.Second)), // start not seen
	}
	if _, err := s.StoreBatch(ctx, first, nil); err != nil {
		t.Fatal(err)
	}
	k := func(i int) string { return first[i].ProcessKey }
	if k(0) == "" || k(1) != k(0) || k(2) != k(0) || k(3) == k(0) || k(4) != k(3) || k(5) == "" || k(5) == k(0) {
		t.Fatalf("keys %q", []string{k(0), k(1), k(2), k(3), k(4), k(5)})
	}
	late := []telemetry.Event{linux(telemetry.KindExec, 200, t1.Add(4*time.Second))}
	if _, err := s.StoreBatch(ctx, late, nil); err != nil {
		t.Fatal(err)
	}
	if late[0].ProcessKey != k(5) {
		t.Fatalf("a start stored after its events should take their key: %q, %q", late[0].ProcessKey, k(5))
	}
	// The same, through a fresh cache (a reopened store).
	s.procs = newProcCache()
	more := []telemetry.Event{linux(telemetry.KindOther, 100, t1.Add(2*time.Hour))}
	if _, err := s.StoreBatch(ctx, more, nil); err != nil {
		t.Fatal(err)
	}
	if more[0].ProcessKey != k(3) {
		t.Fatalf("after reopening: %q, want %q", more[0].ProcessKey, k(3))
	}
}

// A 4688 without ParentProcessName (before Windows 10) takes its parent's
// path and command line from the process its creator pid names, in the same
// batch or stored before.
func TestStoreBatchFillsParent(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	t1 := time.Date(2016, 5, 1, 10, 0, 0, 0, time.UTC)
	parent := securityExec(0x1700, 4, `C:\Windows\System32\cmd.exe`, t1)
	parent.ParentPath = `C:\Windows\explorer.exe`
	child := securityExec(0x2ae4, 0x1700, `C:\Windows\System32\mshta.exe`, t1.Add(time.Second))
	if _, err := s.StoreBatch(ctx, []telemetry.Event{parent, child}, nil); err != nil {
		t.Fatal(err)
	}
	later := securityExec(0x2af0, 0x1700, `C:\Windows\System32\whoami.exe`, t1.Add(time.Minute))
	evs := []telemetry.Event{later}
	if _, err := s.StoreBatch(ctx, evs, nil); err != nil {
		t.Fatal(err)
	}
	rows := collect(t, s, Filter{Kinds: []int64{int64(telemetry.KindExec)}})
	if len(rows) != 3 {
		t.Fatalf("%d rows", len(rows))
	}
	for _, r := range rows[1:] {
		if r.ParentPath != `C:\Windows\System32\cmd.exe` || r.ParentCmdline != `C:\Windows\System32\cmd.exe /x` {
			t.Fatalf("parent of %s: %q %q", r.Path, r.ParentPath, r.ParentCmdline)
		}
	}
}

// Tags, hits and IoC sightings are stored with their batch; one stored
// again is not stored twice, and where new hits landed waits for incidents.
func TestStoreBatchHitsAndTags(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	evs := []telemetry.Event{sampleEvent(1), sampleEvent(2)}
	detect := func(evs []telemetry.Event, st []Stored) (Detected, error) {
		return Detected{Tags: []string{"T1018", ""},
			Hits: []telemetry.Hit{{HitID: "h1", Time: evs[1].Time, Host: evs[1].Host, EID: st[1].EID},
				{HitID: "i1", Time: evs[0].Time, Host: evs[0].Host, EID: st[0].EID, RuleSource: telemetry.RuleSourceIntel}},
			Sightings: []telemetry.IOCSighting{{HitID: "i1", Time: evs[0].Time, Host: evs[0].Host, EID: st[0].EID,
				Indicator: "198.51.100.7", Type: "ipv4", Source: "feed", Confidence: 80, Field: "DestinationIp",
				Value: "198.51.100.7", Groups: []string{"G0016"}}}}, nil
	}
	res, err := s.StoreBatch(ctx, evs, detect)
	if err != nil || res.Hits != 2 || res.Sightings != 1 {
		t.Fatalf("%+v %v", res, err)
	}
	res, err = s.StoreBatch(ctx, []telemetry.Event{sampleEvent(1), sampleEvent(2)}, detect)
	if err != nil || res.Hits != 0 || res.Sightings != 0 || res.Already != 2 {
		t.Fatalf("%+v %v", res, err)
	}
	if n := count(t, s, "SELECT count(*) FROM hits"); n != 2 {
		t.Fatalf("%d hits", n)
	}
	var got []telemetry.IOCSighting
	if err := s.ScanSightings(ctx, SightingFilter{Indicators: []string{"198.51.100.7"}}, func(h *telemetry.IOCSighting) bool {
		got = append(got, *h)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].EID != res.Stored[0].EID || got[0].Field != "DestinationIp" || len(got[0].Groups) != 1 ||
		!got[0].Time.Equal(evs[0].Time) {
		t.Fatalf("sightings %+v", got)
	}
	if err := s.ScanSightings(ctx, SightingFilter{Hosts: []string{"elsewhere"}}, func(*telemetry.IOCSighting) bool {
		t.Error("a sighting of another host")
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, "SELECT count(*) FROM events WHERE techniques = 'T1018'"); n != 1 {
		t.Fatalf("%d tagged", n)
	}
	p, err := s.PendingIncidents(ctx)
	if err != nil || len(p) != 2 || p[0].Host == p[1].Host {
		t.Fatalf("%+v %v", p, err)
	}
	if err := s.ClearPendingIncidents(ctx, p[1].ID); err != nil {
		t.Fatal(err)
	}
	if p, _ := s.PendingIncidents(ctx); len(p) != 0 {
		t.Fatal(p)
	}
}

// A version 2 store opens: events gains rkey, the new tables appear, and
// its rows are kept.
func TestOpenVersion2Store(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	v2 := strings.Replace(schema, ",\n\trkey BLOB,\n\trun_id TEXT NOT NULL DEFAULT ''", "", 1)
	v2 = strings.Replace(v2, "CREATE INDEX IF NOT EXISTS events_run_id ON events(run_id) WHERE run_id != '';\n", "", 1)
	if strings.Contains(v2, "rkey") || strings.Contains(v2, "run_id") {
		t.Fatal("schema changed: update this test")
	}
	if _, err := db.Exec(v2 + hitsSchema + incidentsSchema + "PRAGMA user_version = 2;" +
		"INSERT INTO events (time, kind, source, host, pid, ppid, uid, euid, gid, egid, auid, exit_code) VALUES (1, 1, 'ebpf', 'h', 1, 0, 0, 0, 0, 0, 0, 0)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Append(context.Background(), []telemetry.Event{sampleEvent(1), sampleEvent(1)}); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, "SELECT count(*) FROM events"); n != 2 {
		t.Fatalf("%d events", n)
	}
	if v := count(t, s, "PRAGMA user_version"); v != schemaVersion {
		t.Fatalf("version %d", v)
	}
}

// An auditd record's time is the kernel's coarse clock, in milliseconds: its
// process's start, seen by cn_proc or eBPF in nanoseconds, may lie after the
// record's time by up to a jiffy, and is still its process. A Windows time
// on a whole millisecond may be truncated.
func TestStoreBatchActorMillisecondTime(t *testing.T) {
	s := openTemp(t)
	start := time.Date(2026, 12, 6, 17, 0, 0, 637070520, time.UTC)
	exec := telemetry.NewEvent(telemetry.KindExec, telemetry.SourceCnProc)
	exec.Time, exec.Host, exec.PID, exec.PPID, exec.Path = start, "lin", 9923, 1, "/bin/x"
	conn := telemetry.NewEvent(telemetry.KindOther, telemetry.SourceAuditd)
	// The coarse clock had not ticked since 1.3 ms before the start (seen so
	// on CI: a connect stamped .921 of a process started at .922286).
	conn.Time, conn.Host, conn.PID, conn.Category = start.Add(-1300*time.Microsecond).Truncate(time.Millisecond), "lin", 9923, "network_connection"
	// An auditd record well before the start is not the process's.
	before := telemetry.NewEvent(telemetry.KindOther, telemetry.SourceAuditd)
	before.Time, before.Host, before.PID, before.Category = start.Add(-20*time.Millisecond), "lin", 9923, "file_event"
	// A Sysmon record on the start's millisecond is the process's; one a
	// millisecond earlier is not.
	winStart := start.Add(time.Hour)
	wexec := telemetry.NewEvent(telemetry.KindExec, telemetry.SourceEBPF)
	wexec.Time, wexec.Host, wexec.PID, wexec.PPID, wexec.Path = winStart, "lin", 777, 1, "/bin/y"
	same := telemetry.NewEvent(telemetry.KindOther, telemetry.SourceSysmon)
	same.Time, same.Host, same.PID, same.Category = winStart.Truncate(time.Millisecond), "lin", 777, "network_connection"
	early := telemetry.NewEvent(telemetry.KindOther, telemetry.SourceSysmon)
	early.Time, early.Host, early.PID, early.Category = winStart.Truncate(time.Millisecond).Add(-time.Millisecond), "lin", 777, "file_event"
	evs := []telemetry.Event{exec, conn, before, wexec, same, early}
	if _, err := s.StoreBatch(context.Background(), evs, nil); err != nil {
		t.Fatal(err)
	}
	if evs[0].ProcessKey == "" || evs[1].ProcessKey != evs[0].ProcessKey {
		t.Errorf("record at the start's millisecond: key %q, want the start's %q", evs[1].ProcessKey, evs[0].ProcessKey)
	}
	if evs[2].ProcessKey == evs[0].ProcessKey {
		t.Errorf("auditd record 20 ms before the start took its key %q", evs[2].ProcessKey)
	}
	if evs[3].ProcessKey == "" || evs[4].ProcessKey != evs[3].ProcessKey {
		t.Errorf("record on the start's millisecond: key %q, want the start's %q", evs[4].ProcessKey, evs[3].ProcessKey)
	}
	if evs[5].ProcessKey == evs[3].ProcessKey {
		t.Errorf("record a millisecond before the start took its key %q", evs[5].ProcessKey)
	}
}

// A Linux exec keeps the pid: an auditd record made just before it stays
// with the image that made it, whichever order the two sources are stored
// in, while a record naming the new image (its lagging coarse time before
// the exec's) goes to the new one.
func TestStoreBatchActorAroundExec(t *testing.T) {
	for _, execFirst := range []bool{true, false} {
		s := openTemp(t)
		ctx := context.Background()
		t0 := time.Date(2026, 12, 6, 17, 0, 0, 100000000, time.UTC)
		start := func(path string, at time.Time) telemetry.Event {
			e := telemetry.NewEvent(telemetry.KindExec, telemetry.SourceCnProc)
			e.Time, e.Host, e.PID, e.PPID, e.Path = at, "lin", 4242, 1, path
			return e
		}
		record := func(path, category string, at time.Time) telemetry.Event {
			e := telemetry.NewEvent(telemetry.KindOther, telemetry.SourceAuditd)
			e.Time, e.Host, e.PID, e.Path, e.Category = at, "lin", 4242, path, category
			return e
		}
		procs := []telemetry.Event{start("/usr/bin/python3", t0), start("/bin/sh", t0.Add(503*time.Millisecond+123456))}
		recs := []telemetry.Event{
			record("/usr/bin/python3", "network_connection", t0.Add(500*time.Millisecond)), // the stager's connect
			record("/bin/sh", "file_event", t0.Add(502*time.Millisecond)),                  // the shell's, clock lagging
		}
		first, second := procs, recs
		if !execFirst {
			first, second = recs, procs
		}
		if _, err := s.StoreBatch(ctx, first, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := s.StoreBatch(ctx, second, nil); err != nil {
			t.Fatal(err)
		}
		if procs[0].ProcessKey == procs[1].ProcessKey {
			t.Fatalf("exec first %v: the exec is not a process of its own", execFirst)
		}
		if recs[0].ProcessKey != procs[0].ProcessKey {
			t.Errorf("exec first %v: connect 3 ms before the exec: key %q, want python's %q", execFirst, recs[0].ProcessKey, procs[0].ProcessKey)
		}
		if execFirst && recs[1].ProcessKey != procs[1].ProcessKey {
			t.Errorf("record naming the new image: key %q, want the shell's %q", recs[1].ProcessKey, procs[1].ProcessKey)
		}
	}
}
