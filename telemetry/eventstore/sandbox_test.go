package eventstore

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/telemetry"
)

func sampleRun(id string, started time.Time) telemetry.SandboxRun {
	return telemetry.SandboxRun{
		ID: id, Origin: "detonate", Host: "lab-1", Sample: "dropper.sh",
		SHA256: strings.Repeat("a", 64), SHA1: strings.Repeat("b", 40), MD5: strings.Repeat("c", 32), Size: 123,
		Started: started, Duration: 1500 * time.Millisecond,
		Verdict: "malicious", Score: 7.5,
		Techniques: []string{"T1053.003", "T1105"}, Tactics: []string{"TA0002", "TA0003"},
		Report: []byte(`{"tree":[]}`),
	}
}

// A run is stored and read back whole, with the time the store took it;
// storing the same ID again replaces it; the list is newest first, filters
// apply, and the list leaves the report out unless asked.
func TestSandboxRunsRoundTrip(t *testing.T) {
	ctx := context.Background()
	storedAt := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	s := openTemp(t, WithClock(func() time.Time { return storedAt }))
	a := sampleRun("run-a", t0)
	b := sampleRun("run-b", t0.Add(time.Hour))
	a.StoredAt, b.StoredAt = storedAt, storedAt
	b.Origin, b.SHA256, b.Techniques, b.Tactics, b.Report = "cape", strings.Repeat("d", 64), nil, nil, nil
	for _, r := range []telemetry.SandboxRun{a, b} {
		if err := s.PutSandboxRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	got, ok, err := s.SandboxRun(ctx, "run-a")
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if !reflect.DeepEqual(got, a) {
		t.Fatalf("read back\n%+v\nstored\n%+v", got, a)
	}
	if _, ok, err := s.SandboxRun(ctx, "nope"); ok || err != nil {
		t.Fatal(ok, err)
	}
	runs, err := s.SandboxRuns(ctx, SandboxRunFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || runs[0].ID != "run-b" || runs[1].ID != "run-a" || runs[1].Report != nil {
		t.Fatalf("%+v", runs)
	}
	if !reflect.DeepEqual(runs[0], b) {
		t.Fatalf("read back\n%+v\nstored\n%+v", runs[0], b)
	}
	for _, c := range []struct {
		f    SandboxRunFilter
		want []string
	}{
		{SandboxRunFilter{Origins: []string{"cape"}}, []string{"run-b"}},
		{SandboxRunFilter{SHA256: []string{a.SHA256}}, []string{"run-a"}},
		{SandboxRunFilter{Since: t0.Add(time.Minute)}, []string{"run-b"}},
		{SandboxRunFilter{Until: t0.Add(time.Minute)}, []string{"run-a"}},
		{SandboxRunFilter{Limit: 1}, []string{"run-b"}},
	} {
		runs, err := s.SandboxRuns(ctx, c.f)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range runs {
			ids = append(ids, r.ID)
		}
		if !reflect.DeepEqual(ids, c.want) {
			t.Errorf("%+v: %v, want %v", c.f, ids, c.want)
		}
	}
	a.Verdict, a.Score = "suspicious", 4
	if err := s.PutSandboxRun(ctx, a); err != nil {
		t.Fatal(err)
	}
	runs, _ = s.SandboxRuns(ctx, SandboxRunFilter{WithReport: true})
	if len(runs) != 2 || runs[1].Verdict != "suspicious" || string(runs[1].Report) != `{"tree":[]}` {
		t.Fatalf("%+v", runs)
	}
	if err := s.PutSandboxRun(ctx, telemetry.SandboxRun{Origin: "cape"}); err == nil {
		t.Fatal("run without id stored")
	}
}

// Events carry their run id into the store and back; alike events of two
// runs are both stored (the run is part of their identity), while the same
// event of one run stored twice is stored once.
func TestEventRunID(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	e := sampleEvent(1)
	e.Source = telemetry.SourceSandbox
	e.RunID = "run-a"
	f := e
	f.RunID = "run-b"
	for i := 0; i < 2; i++ {
		if _, err := s.Append(ctx, []telemetry.Event{e, f}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Append(ctx, []telemetry.Event{sampleEvent(2)}); err != nil {
		t.Fatal(err)
	}
	got := collect(t, s, Filter{RunIDs: []string{"run-b"}})
	if len(got) != 1 || got[0].RunID != "run-b" || got[0].Source != telemetry.SourceSandbox {
		t.Fatalf("%+v", got)
	}
	if all := collect(t, s, Filter{}); len(all) != 3 || all[2].RunID != "" {
		t.Fatalf("%d events: %+v", len(all), all)
	}
	var runs []string
	err := s.ScanActivity(ctx, ActivityFilter{RunIDs: []string{"run-a", "run-b"}}, func(a *Activity) bool {
		runs = append(runs, a.RunID)
		return true
	})
	if err != nil || !reflect.DeepEqual(runs, []string{"run-a", "run-b"}) {
		t.Fatal(runs, err)
	}
}

// A version 3 store opens as version 4: events gains run_id (empty for
// the rows it had), sandbox_runs appears, and a read-only open of a
// version 3 store is refused rather than misread.
func TestOpenVersion3Store(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	v3 := strings.Replace(schema, ",\n\trun_id TEXT NOT NULL DEFAULT ''", "", 1)
	v3 = strings.Replace(v3, "CREATE INDEX IF NOT EXISTS events_run_id ON events(run_id) WHERE run_id != '';\n", "", 1)
	if strings.Contains(v3, "run_id") {
		t.Fatal("schema changed: update this test")
	}
	if _, err := db.Exec(v3 + hitsSchema + incidentsSchema + identitySchema + "PRAGMA user_version = 3;" +
		"INSERT INTO events (time, kind, source, host, pid, ppid, uid, euid, gid, egid, auid, exit_code) VALUES (1, 1, 'ebpf', 'h', 1, 0, 0, 0, 0, 0, 0, 0)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := OpenReadOnly(path); err == nil {
		t.Fatal("read-only open of a version 3 store")
	}
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v := count(t, s, "PRAGMA user_version"); v != schemaVersion {
		t.Fatalf("version %d", v)
	}
	old := collect(t, s, Filter{})
	if len(old) != 1 || old[0].RunID != "" {
		t.Fatalf("%+v", old)
	}
	if err := s.PutSandboxRun(ctx, sampleRun("r", t0)); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, "SELECT count(*) FROM sandbox_runs"); n != 1 {
		t.Fatal(n)
	}
}

// A read-only store refuses to store a run.
func TestPutSandboxRunReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	ro, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if err := ro.PutSandboxRun(context.Background(), sampleRun("r", t0)); !errors.Is(err, ErrReadOnly) {
		t.Fatal(err)
	}
}

// Runs are selected by when the store took them (what the fleet's pack
// query does), whatever their start: an imported report of a run ten days
// old is as new as a detonation of the minute. A version 4 store gains the
// column on opening.
func TestSandboxRunsStoredSince(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), FileName)
	now := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	s, err := Open(path, WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutSandboxRun(ctx, sampleRun("earlier", now.Add(-time.Hour))); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Make it a version 4 store: no stored_at.
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"DROP INDEX sandbox_runs_stored_at", "ALTER TABLE sandbox_runs DROP COLUMN stored_at", "PRAGMA user_version = 4"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(q, err)
		}
	}
	db.Close()
	now = now.Add(2 * time.Hour)
	s, err = Open(path, WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v := count(t, s, "PRAGMA user_version"); v != schemaVersion {
		t.Fatalf("version %d", v)
	}
	if err := s.PutSandboxRun(ctx, sampleRun("imported-old", now.AddDate(0, 0, -10))); err != nil {
		t.Fatal(err)
	}
	runs, err := s.SandboxRuns(ctx, SandboxRunFilter{StoredSince: now.Add(-time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0].ID != "imported-old" || !runs[0].StoredAt.Equal(now) {
		t.Fatalf("stored in the last minute: %+v", runs)
	}
	all, err := s.SandboxRuns(ctx, SandboxRunFilter{})
	if err != nil || len(all) != 2 || all[0].ID != "earlier" || !all[0].StoredAt.IsZero() {
		t.Fatalf("all: %+v, %v", all, err)
	}
}

// TestMigrateTogether: several Stores open one version 4 store at once
// (quarry up and quarry import started together after an upgrade): each
// migration runs in one write transaction, so the second finds the column
// the first added rather than failing on "duplicate column".
func TestMigrateTogether(t *testing.T) {
	for round := range 3 {
		path := filepath.Join(t.TempDir(), FileName)
		s, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{"DROP INDEX sandbox_runs_stored_at", "ALTER TABLE sandbox_runs DROP COLUMN stored_at", "PRAGMA user_version = 4"} {
			if _, err := db.Exec(q); err != nil {
				t.Fatal(q, err)
			}
		}
		db.Close()
		errs := make(chan error, 4)
		for range 4 {
			go func() {
				s, err := Open(path)
				if err == nil {
					s.Close()
				}
				errs <- err
			}()
		}
		for range 4 {
			if err := <-errs; err != nil {
				t.Errorf("round %d: %v", round, err)
			}
		}
	}
}
