package sqldb

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/internal/pgtest"
)

func openGroupDB(t *testing.T) *DB {
	t.Helper()
	w, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "g.db")+"?_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	w.SetMaxOpenConns(1)
	db := New(w, w, Dialect{Name: "SQLite", Identity: "INTEGER PRIMARY KEY AUTOINCREMENT"})
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}

func putPack(ctx context.Context, name string, fail error) func(*sql.Tx) error {
	return func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO packs (name, body, updated) VALUES (?, '{}', 0)`, name); err != nil {
			return err
		}
		return fail
	}
}

// Writes arriving while one is under way commit together; one that fails
// after writing is rolled back alone, one whose context ended runs not at
// all, and each caller gets its own answer.
func TestGroupCommit(t *testing.T) {
	db := openGroupDB(t)
	ctx := context.Background()
	boom := errors.New("boom")
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	waiting := func(n int) bool {
		db.g.mu.Lock()
		defer db.g.mu.Unlock()
		return len(db.g.pending) == n
	}
	followers := []struct {
		name string
		ctx  context.Context
		fail error
		want error
	}{{"p1", ctx, nil, nil}, {"p2", ctx, boom, boom}, {"p3", cancelled, nil, context.Canceled}, {"p4", ctx, nil, nil}}
	inLeader, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	defer once.Do(func() { close(release) }) // the leader never stays blocked
	leaderDone := make(chan error, 1)
	go func() {
		leaderDone <- db.tx(ctx, func(tx *sql.Tx) error {
			close(inLeader)
			<-release // the followers queue meanwhile
			return putPack(ctx, "p0", nil)(tx)
		})
	}()
	<-inLeader
	results := make([]chan error, len(followers))
	for i, f := range followers {
		results[i] = make(chan error, 1)
		go func() { results[i] <- db.tx(f.ctx, putPack(f.ctx, f.name, f.fail)) }()
		deadline := time.Now().Add(10 * time.Second)
		for !waiting(i + 1) {
			if time.Now().After(deadline) {
				t.Fatalf("follower %s never queued", f.name)
			}
			time.Sleep(time.Millisecond)
		}
	}
	once.Do(func() { close(release) })
	if err := <-leaderDone; err != nil {
		t.Fatalf("leader: %v", err)
	}
	for i, f := range followers {
		if err := <-results[i]; !errors.Is(err, f.want) || (f.want == nil && err != nil) {
			t.Errorf("%s: err %v, want %v", f.name, err, f.want)
		}
	}
	got := packNames(t, db)
	if len(got) != 3 || got[0] != "p0" || got[1] != "p1" || got[2] != "p4" {
		t.Errorf("packs = %v, want p0 p1 p4 (p2 failed, p3 cancelled)", got)
	}
	db.g.mu.Lock()
	defer db.g.mu.Unlock()
	if db.g.leading || len(db.g.pending) != 0 {
		t.Errorf("after the writes: leading %v, %d pending", db.g.leading, len(db.g.pending))
	}
}

// Log requests waiting for the same commit are written merged (one
// AppendHostLogs); when the merged write fails, each is written alone, so
// only the bad request fails, and one whose context ended is not written.
func TestLogsGroupCommit(t *testing.T) {
	db := openGroupDB(t)
	// A trigger makes a result named "poison" fail its statement.
	if _, err := db.w.Exec(`CREATE TRIGGER poison BEFORE INSERT ON results WHEN NEW.name = 'poison'
BEGIN SELECT RAISE(ABORT, 'poisoned'); END`); err != nil {
		t.Fatal(err)
	}
	testLogsGroupCommit(t, db)
}

// The same on PostgreSQL, where the group is one statement outside a
// transaction (merge.lone): a poisoned request fails that statement, and
// the others are written alone, in a transaction; nothing acknowledged is
// lost. Runs with QUARRY_TEST_POSTGRES set.
func TestLogsGroupCommitPostgres(t *testing.T) {
	db := openPostgresDB(t)
	if _, err := db.w.Exec(`CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.name = 'poison' THEN RAISE EXCEPTION 'poisoned'; END IF;
  RETURN NEW;
END $$`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.w.Exec(`CREATE TRIGGER poison BEFORE INSERT ON results FOR EACH ROW EXECUTE FUNCTION poison()`); err != nil {
		t.Fatal(err)
	}
	testLogsGroupCommit(t, db)
}

func testLogsGroupCommit(t *testing.T, db *DB) {
	ctx := context.Background()
	lane := db.logLane()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	batch := func(host, name string) *store.LogBatch {
		b := &store.LogBatch{Results: []store.Result{{Name: name, Query: name, Action: "added", Time: time.Unix(1000, 0),
			Columns: json.RawMessage(`{"a":"1"}`)}}}
		b.Detections = []store.Detection{{Query: name}}
		b.Detections[0].HitID, b.Detections[0].TechniqueID, b.Detections[0].Time = "hit-"+host, "T1059", time.Unix(1000, 0)
		return b
	}
	followers := []struct {
		host, name string
		ctx        context.Context
		fails      bool
	}{{"h1", "q", ctx, false}, {"h2", "poison", ctx, true}, {"h3", "q", cancelled, true}, {"h4", "q", ctx, false},
		{"h5", "q", ctx, false}}
	waiting := func(n int) bool {
		lane.mu.Lock()
		defer lane.mu.Unlock()
		for _, w := range lane.pending {
			if w.merge == nil || w.merge.kind != "logs" {
				t.Errorf("a log request waits unmerged")
			}
			if (w.merge.lone != nil) != db.d.LoneStatements {
				t.Errorf("a log request's lone statement: %v, want %v", w.merge.lone != nil, db.d.LoneStatements)
			}
		}
		return len(lane.pending) == n
	}
	inLeader, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	defer once.Do(func() { close(release) })
	leaderDone := make(chan error, 1)
	go func() {
		leaderDone <- db.txIn(ctx, lane, nil, func(tx *sql.Tx) error {
			close(inLeader)
			<-release
			return nil
		})
	}()
	<-inLeader
	results := make([]chan error, len(followers))
	for i, f := range followers {
		results[i] = make(chan error, 1)
		go func() { results[i] <- db.AppendLogs(f.ctx, f.host, batch(f.host, f.name)) }()
		deadline := time.Now().Add(10 * time.Second)
		for !waiting(i + 1) {
			if time.Now().After(deadline) {
				t.Fatalf("request of %s never queued", f.host)
			}
			time.Sleep(time.Millisecond)
		}
	}
	once.Do(func() { close(release) })
	if err := <-leaderDone; err != nil {
		t.Fatalf("leader: %v", err)
	}
	for i, f := range followers {
		if err := <-results[i]; (err != nil) != f.fails {
			t.Errorf("%s: err %v, want failure %v", f.host, err, f.fails)
		}
	}
	for _, f := range followers {
		want := map[bool]int{false: 1, true: 0}[f.fails]
		_, n, err := db.Results(ctx, store.ResultFilter{Query: "q", HostID: f.host, Limit: 1})
		if err != nil || n != want {
			t.Errorf("%s: %d rows stored (%v), want %d", f.host, n, err, want)
		}
		var d int
		if err := db.r.QueryRow(db.q(`SELECT count(*) FROM detections WHERE host_id = ?`), f.host).Scan(&d); err != nil || d != want {
			t.Errorf("%s: %d detections stored (%v), want %d", f.host, d, err, want)
		}
	}
}

// openPostgresDB opens the store on a schema of its own in the database
// of QUARRY_TEST_POSTGRES, with PostgreSQL's dialect (as pgstore's), or
// skips the test without it.
func openPostgresDB(t testing.TB) *DB {
	t.Helper()
	cfg, err := pgx.ParseConfig(pgtest.FreshSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	w := sql.OpenDB(stdlib.GetConnector(*cfg))
	db := New(w, w, Dialect{Name: "PostgreSQL", Numbered: true, Identity: "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
		WritableCTE: true, Arrays: true, LoneStatements: true, LogLane: true})
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}

// A group of writes all of one kind with a lone statement is written by
// it, once, outside a transaction; when it fails, each write runs alone
// in a transaction (only the bad one fails); a group of several kinds runs
// in a transaction without it; a write whose context ended is not written.
func TestLoneGroupCommit(t *testing.T) {
	db := openGroupDB(t)
	db.d.LoneStatements = true
	ctx := context.Background()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	boom := errors.New("boom")
	var loneCalls [][]string
	lone := func(ctx context.Context, args []any) (bool, error) {
		var names []string
		for _, a := range args {
			names = append(names, a.(string))
		}
		loneCalls = append(loneCalls, names)
		for _, n := range names {
			switch n {
			case "bad": // fails its statement
				return true, boom
			case "big": // takes more than one statement
				return false, nil
			}
		}
		for _, n := range names {
			if _, err := db.w.ExecContext(ctx, `INSERT INTO packs (name, body, updated) VALUES (?, '{}', 0)`, n); err != nil {
				return true, err
			}
		}
		return true, nil
	}
	type write struct {
		name, kind string
		ctx        context.Context
		want       error
	}
	run := func(writes []write) []string {
		t.Helper()
		blocker, release := make(chan struct{}), make(chan struct{})
		leaderDone := make(chan error, 1)
		go func() {
			leaderDone <- db.tx(ctx, func(*sql.Tx) error { close(blocker); <-release; return nil })
		}()
		<-blocker
		results := make([]chan error, len(writes))
		for i, w := range writes {
			results[i] = make(chan error, 1)
			var fail error
			if w.name == "bad" {
				fail = boom
			}
			m := &merge{kind: w.kind, arg: w.name, lone: lone,
				run: func(ctx context.Context, tx *sql.Tx, args []any) error {
					return errors.New("no merged run in this test")
				}}
			go func() { results[i] <- db.txMerged(w.ctx, m, putPack(w.ctx, w.name, fail)) }()
			deadline := time.Now().Add(10 * time.Second)
			for {
				db.g.mu.Lock()
				n := len(db.g.pending)
				db.g.mu.Unlock()
				if n == i+1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("write %s never queued", w.name)
				}
				time.Sleep(time.Millisecond)
			}
		}
		close(release)
		if err := <-leaderDone; err != nil {
			t.Fatalf("leader: %v", err)
		}
		for i, w := range writes {
			if err := <-results[i]; !errors.Is(err, w.want) || (w.want == nil && err != nil) {
				t.Errorf("%s: err %v, want %v", w.name, err, w.want)
			}
		}
		got := packNames(t, db)
		db.w.Exec(`DELETE FROM packs`)
		return got
	}

	loneCalls = nil
	got := run([]write{{"a", "k", ctx, nil}, {"b", "k", cancelled, context.Canceled}, {"c", "k", ctx, nil}})
	if fmt.Sprint(got) != "[a c]" || fmt.Sprint(loneCalls) != "[[a c]]" {
		t.Errorf("one kind: stored %v, lone calls %v; want [a c], [[a c]]", got, loneCalls)
	}

	loneCalls = nil
	got = run([]write{{"a", "k", ctx, nil}, {"bad", "k", ctx, boom}, {"c", "k", ctx, nil}})
	if fmt.Sprint(got) != "[a c]" || fmt.Sprint(loneCalls) != "[[a bad c]]" {
		t.Errorf("lone failing: stored %v, lone calls %v; want [a c] written alone after [[a bad c]]", got, loneCalls)
	}

	loneCalls = nil
	got = run([]write{{"a", "k", ctx, nil}, {"big", "k", ctx, nil}})
	if fmt.Sprint(got) != "[a big]" || fmt.Sprint(loneCalls) != "[[a big]]" {
		t.Errorf("more than one statement: stored %v, lone calls %v; want [a big] after [[a big]]", got, loneCalls)
	}

	loneCalls = nil
	got = run([]write{{"a", "k", ctx, nil}, {"b", "other", ctx, nil}})
	if fmt.Sprint(got) != "[a b]" || len(loneCalls) != 0 {
		t.Errorf("two kinds: stored %v, lone calls %v; want [a b] and none", got, loneCalls)
	}
}

// BenchmarkLogGroupPostgres writes one check-in's log (a result and a
// detection) at a time, so each group commit is one request: as one lone
// statement, or in a transaction (BEGIN, results, detections, COMMIT).
// pg-cpu-µs/op is the CPU of the store's PostgreSQL backends, read from
// /proc (PostgreSQL on this machine). Runs with QUARRY_TEST_POSTGRES set.
func BenchmarkLogGroupPostgres(b *testing.B) {
	for _, lone := range []bool{true, false} {
		b.Run(map[bool]string{true: "lone", false: "transaction"}[lone], func(b *testing.B) {
			db := openPostgresDB(b)
			db.d.LoneStatements = lone
			ctx := context.Background()
			batch := func(i int) *store.LogBatch {
				lb := &store.LogBatch{Results: []store.Result{{Name: "q", Query: "q", Action: "added", Time: time.Unix(1000, 0),
					Columns: json.RawMessage(fmt.Sprintf(`{"n":"%d"}`, i))}}}
				lb.Detections = []store.Detection{{Query: "q"}}
				lb.Detections[0].HitID, lb.Detections[0].TechniqueID = fmt.Sprintf("hit-%d", i), "T1059"
				return lb
			}
			if err := db.AppendLogs(ctx, "h", batch(-1)); err != nil { // connect and prepare
				b.Fatal(err)
			}
			cpu0 := backendCPU(b, db)
			b.ResetTimer()
			for i := range b.N {
				if err := db.AppendLogs(ctx, "h", batch(i)); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if cpu0 >= 0 {
				b.ReportMetric(float64(backendCPU(b, db)-cpu0)/float64(b.N), "pg-cpu-µs/op")
			}
		})
	}
}

// backendCPU is the user and system CPU, in µs, of the store's
// PostgreSQL backends (connections to its database), or -1 when /proc
// does not have them (PostgreSQL elsewhere).
func backendCPU(tb testing.TB, db *DB) int64 {
	tb.Helper()
	rows, err := db.r.Query(`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend'`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var sum int64
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			tb.Fatal(err)
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return -1
		}
		// Fields 14 and 15 (utime, stime, clock ticks of 10 ms) follow the
		// command name in parentheses.
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) < 13 {
			return -1
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		sum += (u + s) * 10000
	}
	return sum
}

// packNames returns the names of the stored packs, in order.
func packNames(t *testing.T, db *DB) []string {
	t.Helper()
	rows, err := db.w.Query(`SELECT name FROM packs ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		got = append(got, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}
