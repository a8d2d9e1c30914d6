package pipeline_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/detections/pipeline"
	"github.com/quarry-sec/quarry/detections/ruleset"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

// A store that fails (a trigger refusing inserts, as a full disk would)
// loses nothing: the pipeline keeps the batch, retries it, and Add blocks
// once MaxPending events wait; when the store recovers everything is
// stored once.
func TestPipelineRetriesAndBlocks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	st, err := eventstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TRIGGER refuse BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'refused (test)'); END`); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 100)
	p := pipeline.New(st, nil, pipeline.Options{FlushInterval: 5 * time.Millisecond, BatchSize: 4, MaxPending: 8,
		MaxRetryInterval: 20 * time.Millisecond, OnError: func(err error) {
			select {
			case errs <- err:
			default:
			}
		}})
	added := make(chan int, 20)
	go func() {
		for i := range 12 {
			p.Add(linuxExec(int64(100+i), "/usr/bin/ls", "ls", "/bin/sh"))
			added <- i
		}
		close(added)
	}()
	// The store fails a few times; meanwhile Add stops at MaxPending.
	for range 3 {
		if err := <-errs; err == nil {
			t.Fatal("nil error")
		}
	}
	n := 0
	for len(added) > 0 {
		<-added
		n++
	}
	if n > 8 {
		t.Fatalf("Add returned %d times with the store failing and MaxPending 8", n)
	}
	if s := p.Stats(); s.Stored != 0 || s.Errors < 3 {
		t.Fatalf("stats while failing: %+v", s)
	}
	if _, err := db.Exec(`DROP TRIGGER refuse`); err != nil {
		t.Fatal(err)
	}
	for range added {
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if c, err := st.Count(context.Background()); err != nil || c != 12 {
		t.Fatalf("%d events stored after recovery (%v), want 12", c, err)
	}
	if s := p.Stats(); s.Stored != 12 {
		t.Fatalf("stats %+v", s)
	}
}

// Add hands full batches to the pipeline's goroutine: while the store is
// busy (another writer holds it), Add still returns at once, so a
// collector calling it goes on draining its ring buffer.
func TestAddDoesNotWaitForTheStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	st, err := eventstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Another writer holds the store (the store waits up to its 10 s busy
	// timeout for it).
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	p := pipeline.New(st, nil, pipeline.Options{FlushInterval: time.Hour, BatchSize: 4, MaxPending: 64})
	added := make(chan struct{})
	go func() {
		for i := range 12 {
			p.Add(linuxExec(int64(100+i), "/usr/bin/ls", "ls", "/bin/sh"))
		}
		close(added)
	}()
	select {
	case <-added:
	case <-time.After(5 * time.Second): // far beyond what 12 Adds take; within the busy timeout
		t.Fatal("Add waited for a busy store (three full batches, MaxPending 64)")
	}
	if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if c, err := st.Count(context.Background()); err != nil || c != 12 {
		t.Fatalf("%d events stored (%v), want 12", c, err)
	}
}

// A correlation hit that cannot be stored (its write fails once the batch
// is stored) waits for the next save: the batch is not sent again, so the
// correlator does not see its hits twice and its events are stored once.
func TestCorrelationHitsKeptWhenTheirSaveFails(t *testing.T) {
	kb, err := attack.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	rs, err := ruleset.Load(ruleset.Config{Builtin: true, KB: kb})
	if err != nil {
		t.Fatal(err)
	}
	corr, _ := pipeline.Correlator(rs.Rules)
	path := filepath.Join(t.TempDir(), "events.db")
	st, err := eventstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TRIGGER refuse BEFORE INSERT ON hits WHEN NEW.rule_source = 'correlation'
		BEGIN SELECT RAISE(ABORT, 'refused (test)'); END`); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 100)
	p := pipeline.New(st, detections.NewEngine(rs.Rules), pipeline.Options{KB: kb, Correlation: corr,
		FlushInterval: 10 * time.Millisecond, MaxRetryInterval: 20 * time.Millisecond,
		OnError: func(err error) {
			select {
			case errs <- err:
			default:
			}
		}})
	// A discovery burst from one parent: four discovery programs.
	for i, c := range [][2]string{{"/usr/bin/whoami", "whoami"}, {"/usr/bin/id", "id"}, {"/usr/bin/uname", "uname -a"}, {"/usr/bin/hostname", "hostname"}} {
		e := linuxExec(int64(200+i), c[0], c[1], "/bin/sh")
		e.PPID = 199
		p.Add(e)
	}
	if err := <-errs; !strings.Contains(err.Error(), "correlation") {
		t.Fatalf("error %v, want the correlation hits' save", err)
	}
	if _, err := db.Exec(`DROP TRIGGER refuse`); err != nil {
		t.Fatal(err)
	}
	p.Add(linuxExec(300, "/usr/bin/ls", "ls", "/bin/sh")) // the next batch stores what waited
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	n := 0
	st.ScanHits(context.Background(), eventstore.HitFilter{}, func(h *telemetry.Hit) bool {
		if h.RuleSource == "correlation" {
			n++
		}
		return true
	})
	if s := p.Stats(); n == 0 || s.Already != 0 || s.Stored != 5 {
		t.Fatalf("%d correlation hit rows, stats %+v: want the burst's hit stored and every event stored once (none already stored)", n, s)
	}
}
