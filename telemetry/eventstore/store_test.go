package eventstore

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/telemetry"
)

var t0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

func sampleEvent(i int) telemetry.Event {
	e := telemetry.NewEvent(telemetry.KindExec, telemetry.SourceEBPF)
	e.Time = t0.Add(time.Duration(i) * time.Second)
	e.Host = "host-" + strconv.Itoa(i%3)
	e.Category = "process_creation"
	e.PID = int64(1000 + i)
	e.PPID = 1
	e.Path = "/usr/bin/prog" + strconv.Itoa(i%5)
	e.Args = []string{e.Path, "--n", strconv.Itoa(i)}
	e.Cmdline = e.Path + " --n " + strconv.Itoa(i)
	e.Cwd = "/tmp"
	e.UID, e.EUID, e.GID, e.EGID, e.AUID = 1000, 1000, 1000, 1000, 1000
	e.StartTime = e.Time.Add(-time.Millisecond)
	e.Fields = telemetry.FieldsFromMap(map[string]string{"k": "v" + strconv.Itoa(i)})
	return e
}

func openTemp(t testing.TB, opts ...Option) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), FileName), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func collect(t testing.TB, s *Store, f Filter) []StoredEvent {
	t.Helper()
	var out []StoredEvent
	err := s.Scan(context.Background(), f, func(e *StoredEvent) bool {
		out = append(out, *e)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	s := openTemp(t)
	in := []telemetry.Event{sampleEvent(0), sampleEvent(1)}
	in[1].Kind = telemetry.KindExit
	in[1].ExitCode = 3
	in[1].Partial = true
	in[1].Args = nil
	in[1].Fields = telemetry.Fields{}
	first, err := s.AppendTagged(context.Background(), in, []string{"T1059.004", ""})
	if err != nil {
		t.Fatal(err)
	}
	got := collect(t, s, Filter{})
	if len(got) != 2 || got[0].EID != first || got[1].EID != first+1 {
		t.Fatalf("got %d events, eids %v", len(got), got)
	}
	for i := range in {
		if !reflect.DeepEqual(got[i].Event, in[i]) {
			t.Errorf("event %d:\n got %+v\nwant %+v", i, got[i].Event, in[i])
		}
	}
	if got[0].Techniques != "T1059.004" || got[1].Techniques != "" {
		t.Errorf("techniques %q %q", got[0].Techniques, got[1].Techniques)
	}
}

func TestFilters(t *testing.T) {
	s := openTemp(t)
	var evs []telemetry.Event
	for i := 0; i < 100; i++ {
		evs = append(evs, sampleEvent(i))
	}
	if _, err := s.Append(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		f    Filter
		want int
	}{
		{"all", Filter{}, 100},
		{"time window", Filter{Since: t0.Add(10 * time.Second), Until: t0.Add(20 * time.Second)}, 10},
		{"pid", Filter{PIDs: []int64{1005, 1006, 9999}}, 2},
		{"path", Filter{Paths: []string{"/usr/bin/prog1"}}, 20},
		{"path like", Filter{PathLike: []string{"%PROG2"}}, 20},
		{"host and path", Filter{Hosts: []string{"host-0"}, Paths: []string{"/usr/bin/prog0"}}, 7},
		{"source", Filter{Sources: []string{"auditd"}}, 0},
		{"limit newest", Filter{Limit: 3, Newest: true}, 3},
	}
	for _, c := range cases {
		if got := collect(t, s, c.f); len(got) != c.want {
			t.Errorf("%s: %d events, want %d", c.name, len(got), c.want)
		}
	}
	newest := collect(t, s, Filter{Limit: 1, Newest: true})
	if newest[0].PID != 1099 {
		t.Errorf("newest first: pid %d", newest[0].PID)
	}
}

// TestRetentionByAge: retention counts from when events were stored, so a
// recording of old events imported today is kept, and events stored more
// than the maximum age ago go, whatever their own time.
func TestRetentionByAge(t *testing.T) {
	clock := t0
	s := openTemp(t, WithRetention(7*24*time.Hour, -1), WithClock(func() time.Time { return clock }))
	ctx := context.Background()
	if _, err := s.Append(ctx, []telemetry.Event{sampleEvent(0), sampleEvent(1)}); err != nil {
		t.Fatal(err)
	}
	clock = t0.Add(8 * 24 * time.Hour)
	imported := sampleEvent(2)
	imported.Time = time.Date(2020, 10, 18, 0, 0, 0, 0, time.UTC)
	if _, err := s.Append(ctx, []telemetry.Event{imported}); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendHits(ctx, []telemetry.Hit{{HitID: "h", Time: imported.Time}}); err != nil {
		t.Fatal(err)
	}
	res, err := s.EnforceRetention(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := collect(t, s, Filter{})
	if res.DeletedByAge != 2 || len(got) != 1 || got[0].PID != imported.PID {
		t.Fatalf("retention by age: %+v, left %d", res, len(got))
	}
	hits := 0
	s.ScanHits(ctx, HitFilter{}, func(*telemetry.Hit) bool { hits++; return true })
	if hits != 1 {
		t.Fatalf("a hit stored now is kept: %d", hits)
	}
}

func TestRetentionBySize(t *testing.T) {
	const limit = 2 << 20
	s := openTemp(t, WithRetention(-1, limit))
	ctx := context.Background()
	for batch := 0; batch < 20; batch++ {
		var evs []telemetry.Event
		for i := 0; i < 500; i++ {
			e := sampleEvent(batch*500 + i)
			e.Cmdline += " " + string(make([]byte, 400))
			evs = append(evs, e)
		}
		if _, err := s.Append(ctx, evs); err != nil {
			t.Fatal(err)
		}
	}
	res, err := s.EnforceRetention(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.DeletedBySize == 0 || res.SizeBytes > limit {
		t.Fatalf("retention by size: %+v", res)
	}
	// The oldest went first: what is left is the newest events.
	left := collect(t, s, Filter{})
	if len(left) == 0 || left[len(left)-1].PID != int64(1000+9999) {
		t.Fatalf("newest event should survive; %d left", len(left))
	}
	if left[0].PID <= 1000 {
		t.Fatalf("oldest event should be gone, first left pid %d", left[0].PID)
	}
	fi, err := os.Stat(s.FilePath())
	if err != nil || fi.Size() > limit*11/10 {
		t.Fatalf("file should shrink back near the limit: %v %d", err, fi.Size())
	}
}

// TestCrashMidInsert kills a writer with SIGKILL while it inserts and checks
// that the store opens with every batch the writer saw committed.
func TestCrashMidInsert(t *testing.T) {
	if os.Getenv("QUARRY_STORE_CRASH_WRITER") != "" {
		t.Skip("helper process")
	}
	path := filepath.Join(t.TempDir(), FileName)
	cmd := exec.Command(os.Args[0], "-test.run", "^TestCrashWriter$")
	cmd.Env = append(os.Environ(), "QUARRY_STORE_CRASH_WRITER="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	committed := 0
	for sc.Scan() {
		var n int
		if _, err := fmt.Sscanf(sc.Text(), "committed %d", &n); err == nil {
			committed = n
			if committed >= 20000 {
				break
			}
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if committed == 0 {
		t.Fatal("writer committed nothing before the kill")
	}
	s, err := Open(path)
	if err != nil {
		t.Fatalf("store does not open after kill -9: %v", err)
	}
	defer s.Close()
	n, err := s.Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n < int64(committed) {
		t.Fatalf("lost committed events: %d stored, %d reported committed", n, committed)
	}
	var integrity string
	if err := s.write.QueryRow("PRAGMA integrity_check").Scan(&integrity); err != nil || integrity != "ok" {
		t.Fatalf("integrity_check: %v %s", err, integrity)
	}
}

// TestCrashWriter is the helper process of TestCrashMidInsert: it inserts
// batches forever, printing the running total after each commit.
func TestCrashWriter(t *testing.T) {
	path := os.Getenv("QUARRY_STORE_CRASH_WRITER")
	if path == "" {
		t.Skip("helper process for TestCrashMidInsert")
	}
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for batch := 0; ; batch++ {
		evs := make([]telemetry.Event, 1000)
		for i := range evs {
			evs[i] = sampleEvent(total + i)
		}
		if _, err := s.Append(context.Background(), evs); err != nil {
			t.Fatal(err)
		}
		total += len(evs)
		fmt.Printf("committed %d\n", total)
	}
}

func TestHits(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	h := telemetry.Hit{HitID: "h1", TechniqueID: "T1003.001", Time: t0, Host: "web1", RuleID: "r1", RuleTitle: "LSASS dump",
		RuleAuthor: "Quarry team", RuleSource: "builtin", Severity: "high", Confidence: "high", EID: 7, PID: 42}
	h2 := h
	h2.TechniqueID = "T1218.011"
	h3 := h
	h3.HitID, h3.TechniqueID, h3.Host, h3.Time = "h2", "T1059.001", "db1", t0.Add(time.Hour)
	if err := s.AppendHits(ctx, []telemetry.Hit{h, h2, h3}); err != nil {
		t.Fatal(err)
	}
	// Re-running detection over the same events does not duplicate.
	if err := s.AppendHits(ctx, []telemetry.Hit{h}); err != nil {
		t.Fatal(err)
	}
	count := func(f HitFilter) int {
		n := 0
		if err := s.ScanHits(ctx, f, func(*telemetry.Hit) bool { n++; return true }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	cases := map[string]struct {
		f    HitFilter
		want int
	}{
		"all":              {HitFilter{}, 3},
		"parent technique": {HitFilter{TechniquePrefixes: []string{"T1003"}}, 1},
		"exact":            {HitFilter{TechniqueIDs: []string{"T1003"}}, 0},
		"host":             {HitFilter{Hosts: []string{"db1"}}, 1},
		"window":           {HitFilter{Since: t0.Add(time.Minute)}, 1},
		"hit id":           {HitFilter{HitIDs: []string{"h1"}}, 2},
	}
	for name, c := range cases {
		if got := count(c.f); got != c.want {
			t.Errorf("%s: %d hits, want %d", name, got, c.want)
		}
	}
}
