package sqldb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/quarry-sec/quarry/fleet/store"
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
	rows, err := db.w.Query(`SELECT name FROM packs ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		got = append(got, n)
	}
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
	ctx := context.Background()
	// A trigger makes a result named "poison" fail its statement.
	if _, err := db.w.Exec(`CREATE TRIGGER poison BEFORE INSERT ON results WHEN NEW.name = 'poison'
BEGIN SELECT RAISE(ABORT, 'poisoned'); END`); err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	batch := func(name string) *store.LogBatch {
		return &store.LogBatch{Results: []store.Result{{Name: name, Query: name, Action: "added", Time: time.Unix(1000, 0),
			Columns: json.RawMessage(`{"a":"1"}`)}}}
	}
	followers := []struct {
		host, name string
		ctx        context.Context
		fails      bool
	}{{"h1", "q", ctx, false}, {"h2", "poison", ctx, true}, {"h3", "q", cancelled, true}, {"h4", "q", ctx, false}}
	waiting := func(n int) bool {
		db.g.mu.Lock()
		defer db.g.mu.Unlock()
		for _, w := range db.g.pending {
			if w.merge == nil || w.merge.kind != "logs" {
				t.Errorf("a log request waits unmerged")
			}
		}
		return len(db.g.pending) == n
	}
	inLeader, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	defer once.Do(func() { close(release) })
	leaderDone := make(chan error, 1)
	go func() {
		leaderDone <- db.tx(ctx, func(tx *sql.Tx) error {
			close(inLeader)
			<-release
			return nil
		})
	}()
	<-inLeader
	results := make([]chan error, len(followers))
	for i, f := range followers {
		results[i] = make(chan error, 1)
		go func() { results[i] <- db.AppendLogs(f.ctx, f.host, batch(f.name)) }()
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
		_, n, err := db.Results(ctx, store.ResultFilter{Query: "q", HostID: f.host, Limit: 1})
		if want := map[bool]int{false: 1, true: 0}[f.fails]; err != nil || n != want {
			t.Errorf("%s: %d rows stored (%v), want %d", f.host, n, err, want)
		}
	}
}
