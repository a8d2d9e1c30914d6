package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/fleet/osqwire"
)

const testUnit = 20 * time.Millisecond

// startAgent runs an agent against srvURL until the test ends.
func startAgent(t *testing.T, url, secret, dir string, q Querier) (*Agent, func()) {
	t.Helper()
	a, err := New(Config{
		FleetURL: url, EnrollSecret: secret, HostIdentifier: "host-a", Version: "test",
		DataDir: dir, Engine: q, ConfigInterval: 100 * time.Millisecond,
		DistributedInterval: 50 * time.Millisecond, LogInterval: 30 * time.Millisecond,
		ScheduleUnit: testUnit,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := a.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	stop := func() { cancel(); wg.Wait() }
	t.Cleanup(stop)
	return a, stop
}

func waitFor(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	// d is how long it should take; the deadline is generous, since the
	// race detector and a loaded CI machine slow everything down, and
	// waiting longer only matters when the test fails anyway.
	deadline := time.Now().Add(max(6*d, 30*time.Second))
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func hitsSchedule() osqwire.ConfigResponse {
	return osqwire.ConfigResponse{Schedule: map[string]osqwire.ScheduledQuery{
		"hits": {Query: "SELECT hit_id, n FROM hits", Interval: 1},
	}}
}

// addedHits counts each hit_id over every result log's added rows.
func addedHits(logs []osqwire.ResultLog[Row]) map[string]int {
	got := map[string]int{}
	for _, l := range logs {
		if l.DiffResults == nil {
			continue
		}
		for _, r := range l.DiffResults.Added {
			got[r["hit_id"]]++
		}
	}
	return got
}

func TestAgentEnrollsAndLogsDifferentialResults(t *testing.T) {
	f, srv := newFakeFleet(t, "s3cret")
	f.config = hitsSchedule()
	db := hitsDB(t)
	db.Exec("INSERT INTO hits VALUES ('h1', 1)")
	_, stop := startAgent(t, srv.URL, "s3cret", t.TempDir(), sqlQuerier{db})
	waitFor(t, "first result", 5*time.Second, func() bool { r, _, _, _ := f.snapshot(); return len(r) >= 1 })
	// One transaction, so no run sees the removal without the addition.
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	tx.Exec("DELETE FROM hits WHERE hit_id = 'h1'")
	tx.Exec("INSERT INTO hits VALUES ('h2', 2)")
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "second result", 5*time.Second, func() bool { r, _, _, _ := f.snapshot(); return len(r) >= 2 })
	stop()
	results, _, _, enrolls := f.snapshot()
	if enrolls != 1 {
		t.Errorf("enrolls = %d, want 1", enrolls)
	}
	first, second := results[0], results[1]
	if first.Name != "hits" || first.HostIdentifier != "host-a" || first.Counter != 0 || first.Numerics ||
		first.UnixTime == 0 || !strings.HasSuffix(first.CalendarTime, " UTC") {
		t.Errorf("first log = %+v", first)
	}
	if len(first.DiffResults.Added) != 1 || first.DiffResults.Added[0]["hit_id"] != "h1" || first.DiffResults.Added[0]["n"] != "1" {
		t.Errorf("first diff = %+v", first.DiffResults)
	}
	if second.Counter == 0 || len(second.DiffResults.Added) != 1 || second.DiffResults.Added[0]["hit_id"] != "h2" ||
		len(second.DiffResults.Removed) != 1 || second.DiffResults.Removed[0]["hit_id"] != "h1" {
		t.Errorf("second log = %+v", second)
	}
	req := f.enrollReq[0]
	if req.HostIdentifier != "host-a" || req.HostDetails["osquery_info"]["version"] == "" ||
		req.HostDetails["quarry_info"]["version"] != "test" || req.PlatformType == "" {
		t.Errorf("enroll request = %+v", req)
	}
}

func TestAgentSnapshotQuery(t *testing.T) {
	f, srv := newFakeFleet(t, "s")
	f.config = osqwire.ConfigResponse{Schedule: map[string]osqwire.ScheduledQuery{"snap": {Query: "SELECT 7 AS seven", Interval: 1, Snapshot: true}}}
	startAgent(t, srv.URL, "s", t.TempDir(), sqlQuerier{hitsDB(t)})
	waitFor(t, "two snapshots", 5*time.Second, func() bool { r, _, _, _ := f.snapshot(); return len(r) >= 2 })
	r, _, _, _ := f.snapshot()
	for _, l := range r[:2] {
		if l.Action != "snapshot" || len(l.Snapshot) != 1 || l.Snapshot[0]["seven"] != "7" || l.DiffResults != nil {
			t.Errorf("snapshot log = %+v", l)
		}
	}
}

// The server is unreachable for a while and comes back: every hit written
// meanwhile arrives, each exactly once.
func TestAgentOutageEveryResultOnce(t *testing.T) {
	f, srv := newFakeFleet(t, "s")
	f.config = hitsSchedule()
	db := hitsDB(t)
	dir := t.TempDir()
	a, stop := startAgent(t, srv.URL, "s", dir, sqlQuerier{db})
	waitFor(t, "enrollment and the first run", 5*time.Second, func() bool {
		s := a.Stats()
		return s.Enrollments == 1 && s.ScheduledRuns >= 1
	})
	n := 0
	insert := func(k int) {
		for range k {
			n++
			if _, err := db.Exec("INSERT INTO hits VALUES (?, ?)", fmt.Sprintf("hit-%d", n), n); err != nil {
				t.Fatal(err)
			}
			time.Sleep(3 * time.Millisecond)
		}
	}
	insert(20)
	f.setDown(true)
	insert(50)
	waitFor(t, "logs queued while down", 5*time.Second, func() bool {
		c, _, _ := a.Queue().Len(context.Background())
		return c >= 3 && a.Stats().SendFailures > 0
	})
	f.setDown(false)
	insert(30)
	waitFor(t, "every hit", 10*time.Second, func() bool { r, _, _, _ := f.snapshot(); return len(addedHits(r)) == n })
	stop()
	r, _, _, _ := f.snapshot()
	for id, c := range addedHits(r) {
		if c != 1 {
			t.Errorf("%s arrived %d times", id, c)
		}
	}
	if c, _, _ := a.Queue().Len(context.Background()); c != 0 {
		t.Errorf("%d logs still queued", c)
	}
}

// Logs queued when the agent stops reach the server after a restart.
func TestAgentQueueSurvivesRestart(t *testing.T) {
	f, srv := newFakeFleet(t, "s")
	f.config = hitsSchedule()
	db := hitsDB(t)
	dir := t.TempDir()
	a, stop := startAgent(t, srv.URL, "s", dir, sqlQuerier{db})
	// The schedule comes with the config, fetched after enrollment: going
	// down before the first scheduled run would leave the agent without it.
	waitFor(t, "enrollment and the first run", 5*time.Second, func() bool {
		s := a.Stats()
		return s.Enrollments == 1 && s.ScheduledRuns >= 1
	})
	f.setDown(true)
	db.Exec("INSERT INTO hits VALUES ('late', 1)")
	waitFor(t, "queued", 5*time.Second, func() bool { return a.Stats().ResultLogs >= 1 })
	stop()
	f.setDown(false)
	startAgent(t, srv.URL, "s", dir, sqlQuerier{db})
	waitFor(t, "queued log after restart", 5*time.Second, func() bool { r, _, _, _ := f.snapshot(); return addedHits(r)["late"] == 1 })
	time.Sleep(200 * time.Millisecond)
	r, _, _, enrolls := f.snapshot()
	if addedHits(r)["late"] != 1 {
		t.Errorf("late hit arrived %d times", addedHits(r)["late"])
	}
	if enrolls != 1 {
		t.Errorf("enrolls = %d, want 1 (the node key is kept)", enrolls)
	}
}

func TestAgentReenrollsOnNodeInvalid(t *testing.T) {
	f, srv := newFakeFleet(t, "s")
	f.config = hitsSchedule()
	db := hitsDB(t)
	a, _ := startAgent(t, srv.URL, "s", t.TempDir(), sqlQuerier{db})
	waitFor(t, "enrollment", 5*time.Second, func() bool { return a.Stats().Enrollments == 1 })
	f.invalidate()
	db.Exec("INSERT INTO hits VALUES ('after', 1)")
	waitFor(t, "re-enrollment and the log", 5*time.Second, func() bool {
		r, _, _, e := f.snapshot()
		return e == 2 && addedHits(r)["after"] == 1
	})
}

func TestAgentLiveQueryStatuses(t *testing.T) {
	f, srv := newFakeFleet(t, "s")
	f.live = map[string]string{"ok": "SELECT 1 AS one, NULL AS nada", "bad": "SELEC broken FROM nowhere"}
	startAgent(t, srv.URL, "s", t.TempDir(), sqlQuerier{hitsDB(t)})
	waitFor(t, "distributed write", 5*time.Second, func() bool { _, _, w, _ := f.snapshot(); return len(w) >= 1 })
	_, _, w, _ := f.snapshot()
	got := w[0]
	if got.NodeKey == "" || got.Statuses["ok"] != 0 || len(got.Queries["ok"]) != 1 ||
		got.Queries["ok"][0]["one"] != "1" || got.Queries["ok"][0]["nada"] != "" {
		t.Errorf("ok answer = %+v", got)
	}
	if got.Statuses["bad"] == 0 || !strings.Contains(got.Messages["bad"], "syntax error") {
		t.Errorf("bad answer: status %d, message %q", got.Statuses["bad"], got.Messages["bad"])
	}
}

func TestAgentScheduledQueryErrorLogsStatus(t *testing.T) {
	f, srv := newFakeFleet(t, "s")
	f.config = osqwire.ConfigResponse{Schedule: map[string]osqwire.ScheduledQuery{"broken": {Query: "SELECT * FROM missing", Interval: 1}}}
	startAgent(t, srv.URL, "s", t.TempDir(), sqlQuerier{hitsDB(t)})
	waitFor(t, "status log", 5*time.Second, func() bool { _, s, _, _ := f.snapshot(); return len(s) >= 1 })
	time.Sleep(100 * time.Millisecond)
	_, s, _, _ := f.snapshot()
	if len(s) != 1 || !strings.Contains(s[0].Message, "broken") || s[0].Severity != osqwire.SeverityError {
		t.Errorf("status logs = %+v (want one: the same error is logged once)", s)
	}
}

func TestAgentWrongSecretKeepsTrying(t *testing.T) {
	f, srv := newFakeFleet(t, "right")
	var mu sync.Mutex
	var errs []error
	a, err := New(Config{FleetURL: srv.URL, EnrollSecret: "wrong", DataDir: t.TempDir(), Engine: sqlQuerier{hitsDB(t)},
		OnError: func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := a.Run(ctx); err != nil {
		t.Fatalf("Run = %v, want nil at the end of ctx", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(errs) == 0 || !strings.Contains(errs[0].Error(), "enrollment refused") {
		t.Errorf("errors = %v", errs)
	}
	if _, _, _, e := f.snapshot(); e != 0 {
		t.Errorf("enrolls = %d", e)
	}
}

func TestReadEnrollSecret(t *testing.T) {
	dir := t.TempDir()
	good, empty := filepath.Join(dir, "secret"), filepath.Join(dir, "empty")
	os.WriteFile(good, []byte("  s3cret\n"), 0o600)
	os.WriteFile(empty, []byte(" \n"), 0o600)
	if s, err := ReadEnrollSecret(good); err != nil || s != "s3cret" {
		t.Errorf("secret %q, %v", s, err)
	}
	if _, err := ReadEnrollSecret(empty); err == nil || !strings.Contains(err.Error(), empty) {
		t.Errorf("empty file: %v", err)
	}
	if _, err := ReadEnrollSecret(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file: no error")
	}
}
