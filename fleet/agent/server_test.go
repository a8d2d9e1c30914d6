package agent

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/detections/packs"
	"github.com/quarry-sec/quarry/fleet/osqwire"
	"github.com/quarry-sec/quarry/fleet/server"
	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/fleet/store/sqlitestore"
)

// realFleet is Quarry's fleet server on a SQLite store, on a loopback
// port it can leave and come back to.
type realFleet struct {
	t    *testing.T
	st   store.Store
	h    http.Handler
	addr string
	mu   sync.Mutex
	srv  *http.Server
	// dropAnswer, when set, picks requests whose answer is lost: the
	// server handles them (and commits) but the connection closes before
	// the answer reaches the agent.
	dropAnswer func(*http.Request) bool
	dropped    int
	// refuse closes every connection unhandled (the server unreachable);
	// cutAfterHunt sets refuse once a distributed read hands out a hunt.
	refuse, cutAfterHunt bool
}

// lossy wraps the server's handler with dropAnswer.
func (f *realFleet) lossy(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		refuse, cut := f.refuse, f.cutAfterHunt && r.URL.Path == osqwire.PathDistributedRead
		drop := !refuse && f.dropAnswer != nil && f.dropAnswer(r)
		if drop {
			f.dropped++
		}
		f.mu.Unlock()
		switch {
		case refuse:
			f.closeConn(w)
		case drop:
			h.ServeHTTP(httptest.NewRecorder(), r) // the server ran and answered; the answer is lost
			f.closeConn(w)
		case cut:
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			var read osqwire.DistributedReadResponse
			if json.Unmarshal(rec.Body.Bytes(), &read) == nil && len(read.Queries) > 0 {
				f.mu.Lock()
				f.refuse = true
				f.mu.Unlock()
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
		default:
			h.ServeHTTP(w, r)
		}
	})
}

// closeConn closes the request's connection without an answer.
func (f *realFleet) closeConn(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		f.t.Errorf("hijack: %v", err)
		return
	}
	conn.Close()
}

// setRefuse sets refuse and cutAfterHunt.
func (f *realFleet) setRefuse(refuse, cutAfterHunt bool) {
	f.mu.Lock()
	f.refuse, f.cutAfterHunt = refuse, cutAfterHunt
	f.mu.Unlock()
}

// refusing reports whether the server is refusing connections.
func (f *realFleet) refusing() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refuse
}

// setDrop sets dropAnswer and returns how many answers it dropped so far.
func (f *realFleet) setDrop(drop func(*http.Request) bool) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dropAnswer = drop
	return f.dropped
}

// droppedAnswers is how many answers dropAnswer dropped so far.
func (f *realFleet) droppedAnswers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dropped
}

func newRealFleet(t *testing.T, secret string) *realFleet {
	t.Helper()
	st, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), sqlitestore.FileName))
	if err != nil {
		t.Fatal(err)
	}
	kb, err := attack.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	// A short node cache TTL: tests replace a host's key through the store,
	// as another replica would, and the old key works here until the TTL.
	s, err := server.New(server.Config{Store: st, KB: kb, EnrollSecret: secret, Version: "test",
		NodeCacheTTL: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	f := &realFleet{t: t, st: st, addr: "127.0.0.1:0"}
	f.h = f.lossy(s.Handler())
	f.up()
	t.Cleanup(func() { f.down(); st.Close() })
	return f
}

func (f *realFleet) url() string { return "http://" + f.addr }

// up (re)starts serving on the same address.
func (f *realFleet) up() {
	f.t.Helper()
	var l net.Listener
	var err error
	for range 50 {
		if l, err = net.Listen("tcp", f.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		f.t.Fatal(err)
	}
	f.mu.Lock()
	f.addr = l.Addr().String()
	f.srv = &http.Server{Handler: f.h}
	srv := f.srv
	f.mu.Unlock()
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			f.t.Errorf("serve: %v", err)
		}
	}()
}

// down closes the listener and every connection.
func (f *realFleet) down() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.srv != nil {
		f.srv.Close()
		f.srv = nil
	}
}

// ioaHitsDB is a database with an ioa_hits table of the detection pack's
// columns, so the pack's hits query runs on it.
func ioaHitsDB(t *testing.T) *sql.DB {
	db := hitsDB(t)
	_, err := db.Exec(`CREATE TABLE ioa_hits (hit_id TEXT, time INTEGER, host_identifier TEXT, rule_id TEXT, rule_title TEXT,
		rule_author TEXT, rule_source TEXT, technique_id TEXT, technique_name TEXT, tactic TEXT, severity TEXT,
		confidence TEXT, description TEXT, recommendations TEXT, eid INTEGER, pid INTEGER, path TEXT, cmdline TEXT,
		parent_path TEXT, username TEXT, source TEXT, detected_at INTEGER)`)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func insertHit(t *testing.T, db *sql.DB, id string) {
	t.Helper()
	_, err := db.Exec(`INSERT INTO ioa_hits VALUES (?, strftime('%s','now'), 'host-a', 'r1', 'Rule one', 'me', 'builtin',
		'T1059.004', 'Unix Shell', 'execution', 'high', 'medium', 'd', 'r', 1, 42, '/bin/sh', 'sh -c x', '/bin/bash', 'root', 'ebpf',
		strftime('%s','now'))`, id)
	if err != nil {
		t.Fatal(err)
	}
}

func hitRows(t *testing.T, st store.Store) map[string]int {
	t.Helper()
	res, _, err := st.Results(context.Background(), store.ResultFilter{Query: packs.QueryHits, Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, r := range res {
		if r.Action == "added" {
			var id string
			if _, v, ok := strings.Cut(string(r.Columns), `"hit_id":"`); ok {
				id, _, _ = strings.Cut(v, `"`)
			}
			got[id]++
		}
	}
	return got
}

// Against Quarry's own server: the detection pack's hits query runs, the
// server is stopped (connections refused) and restarted, and every hit
// arrives exactly once, as a result row and as a detection.
func TestAgentWithFleetServerOutage(t *testing.T) {
	f := newRealFleet(t, "s")
	db := ioaHitsDB(t)
	a, err := New(Config{FleetURL: f.url(), EnrollSecret: "s", HostIdentifier: "host-a", Version: "test",
		DataDir: t.TempDir(), Engine: sqlQuerier{db}, DistributedInterval: 50 * time.Millisecond,
		LogInterval: 30 * time.Millisecond, ScheduleUnit: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()

	n := 0
	add := func(k int) {
		for range k {
			n++
			insertHit(t, db, fmt.Sprintf("hit-%03d", n))
			time.Sleep(5 * time.Millisecond)
		}
	}
	add(10)
	waitFor(t, "first hits at the server", 10*time.Second, func() bool { return len(hitRows(t, f.st)) > 0 })
	f.down()
	add(20)
	waitFor(t, "results queued", 10*time.Second, func() bool { c, _, _ := a.Queue().Len(ctx); return c > 0 })
	time.Sleep(300 * time.Millisecond)
	f.up()
	add(10)
	waitFor(t, "every hit", 15*time.Second, func() bool { return len(hitRows(t, f.st)) == n })
	time.Sleep(200 * time.Millisecond)
	for id, c := range hitRows(t, f.st) {
		if c != 1 {
			t.Errorf("%s stored %d times", id, c)
		}
	}
	dets, total, err := f.st.Detections(ctx, store.DetectionFilter{Limit: 1000})
	if err != nil || total != n {
		t.Errorf("detections = %d (%v), want %d", total, err, n)
	}
	if len(dets) > 0 && (dets[0].TechniqueID != "T1059.004" || dets[0].HostIdentifier != "host-a") {
		t.Errorf("detection = %+v", dets[0])
	}
}

// A hunt through the analyst API: the host answers, and a broken SQL comes
// back as the host's error with SQLite's message.
func TestAgentAnswersHuntsFromFleetServer(t *testing.T) {
	f := newRealFleet(t, "s")
	db := ioaHitsDB(t)
	a, err := New(Config{FleetURL: f.url(), EnrollSecret: "s", HostIdentifier: "host-a", DataDir: t.TempDir(),
		Engine: sqlQuerier{db}, DistributedInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "enrollment", 5*time.Second, func() bool { h, _ := f.st.Hosts(ctx); return len(h) == 1 })
	hosts, _ := f.st.Hosts(ctx)
	for _, c := range []struct{ id, sql string }{{"good", "SELECT 40 + 2 AS answer"}, {"bad", "SELECT * FROM no_such_table"}} {
		h := &store.Hunt{ID: c.id, SQL: c.sql, Targets: store.Targets{All: true}, Created: time.Now(), Deadline: time.Now().Add(time.Minute)}
		if err := f.st.CreateHunt(ctx, h, []string{hosts[0].ID}); err != nil {
			t.Fatal(err)
		}
	}
	state := func(id string) store.HuntHost {
		hh, err := f.st.HuntHosts(ctx, id)
		if err != nil || len(hh) != 1 {
			t.Fatalf("hunt hosts: %v, %v", hh, err)
		}
		return hh[0]
	}
	waitFor(t, "answers", 5*time.Second, func() bool {
		return state("good").Status != store.HuntPending && state("bad").Status != store.HuntPending
	})
	if g := state("good"); g.Status != store.HuntAnswered || g.Rows != 1 {
		t.Errorf("good = %+v", g)
	}
	rows, _ := f.st.HuntRows(ctx, "good", 10, 0)
	if len(rows) != 1 || !strings.Contains(string(rows[0].Columns), `"answer":"42"`) {
		t.Errorf("rows = %v", rows)
	}
	if b := state("bad"); b.Status != store.HuntError || !strings.Contains(b.Message, "no such table") {
		t.Errorf("bad = %+v", b)
	}
}

// The server forgets the agent's node key (here: the host re-enrolled
// elsewhere); the agent gets node_invalid, enrolls again, and its logs flow.
func TestAgentReenrollsWithFleetServer(t *testing.T) {
	f := newRealFleet(t, "s")
	db := ioaHitsDB(t)
	a, err := New(Config{FleetURL: f.url(), EnrollSecret: "s", HostIdentifier: "host-a", DataDir: t.TempDir(),
		Engine: sqlQuerier{db}, LogInterval: 30 * time.Millisecond, DistributedInterval: 50 * time.Millisecond,
		ScheduleUnit: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "enrollment", 5*time.Second, func() bool { return a.Stats().Enrollments == 1 })
	if err := f.st.EnrollHost(ctx, &store.Host{NodeKey: "rotated", HostIdentifier: "host-a"}); err != nil {
		t.Fatal(err)
	}
	insertHit(t, db, "after-rotation")
	waitFor(t, "re-enrollment and the hit", 10*time.Second, func() bool {
		return a.Stats().Enrollments == 2 && hitRows(t, f.st)["after-rotation"] == 1
	})
}

// The server takes the agent's log requests and commits them, but the
// answers are lost (the connection closes after the handler ran) for a
// while: the agent keeps its logs queued and sends them again, and every
// hit is stored exactly once, as a result row and as a detection.
func TestAgentLostAnswersEveryResultOnce(t *testing.T) {
	f := newRealFleet(t, "s")
	db := ioaHitsDB(t)
	a, err := New(Config{FleetURL: f.url(), EnrollSecret: "s", HostIdentifier: "host-a", Version: "test",
		DataDir: t.TempDir(), Engine: sqlQuerier{db}, DistributedInterval: 50 * time.Millisecond,
		LogInterval: 30 * time.Millisecond, ScheduleUnit: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()

	n := 0
	add := func(k int) {
		for range k {
			n++
			insertHit(t, db, fmt.Sprintf("hit-%03d", n))
			time.Sleep(5 * time.Millisecond)
		}
	}
	add(5)
	waitFor(t, "first hits at the server", 10*time.Second, func() bool { return len(hitRows(t, f.st)) > 0 })
	f.setDrop(func(r *http.Request) bool { return r.URL.Path == osqwire.PathLog })
	add(20)
	// Every hit reaches the store while no answer reaches the agent.
	waitFor(t, "hits committed with lost answers", 15*time.Second, func() bool { return len(hitRows(t, f.st)) == n })
	waitFor(t, "the agent resending", 10*time.Second, func() bool { return f.droppedAnswers() >= 3 })
	dropped := f.setDrop(nil)
	add(5)
	waitFor(t, "every hit, queue empty", 15*time.Second, func() bool {
		c, _, _ := a.Queue().Len(ctx)
		return len(hitRows(t, f.st)) == n && c == 0
	})
	time.Sleep(200 * time.Millisecond)
	if a.Stats().SendFailures == 0 {
		t.Errorf("agent saw no failed send though %d answers were dropped", dropped)
	}
	for id, c := range hitRows(t, f.st) {
		if c != 1 {
			t.Errorf("%s stored %d times", id, c)
		}
	}
	if _, total, err := f.st.Detections(ctx, store.DetectionFilter{Limit: 1000}); err != nil || total != n {
		t.Errorf("detections = %d (%v), want %d", total, err, n)
	}
}

// The agent takes a hunt, and the server becomes unreachable before the
// answer is written; the agent is even restarted meanwhile. Once the
// server is back, the answer queued on disk reaches the hunt before its
// deadline, though the server does not hand the hunt out again.
func TestAgentHuntAnswerSurvivesOutage(t *testing.T) {
	f := newRealFleet(t, "s")
	db := ioaHitsDB(t)
	dir := t.TempDir()
	run := func() (*Agent, func()) {
		a, err := New(Config{FleetURL: f.url(), EnrollSecret: "s", HostIdentifier: "host-a", DataDir: dir,
			Engine: sqlQuerier{db}, DistributedInterval: 50 * time.Millisecond, LogInterval: 40 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		return a, func() { cancel(); <-done }
	}
	ctx := context.Background()
	a, stop := run()
	waitFor(t, "enrollment", 5*time.Second, func() bool { h, _ := f.st.Hosts(ctx); return len(h) == 1 })
	hosts, _ := f.st.Hosts(ctx)
	// The server's schema probe comes with the agent's first distributed
	// read: answered and gone from the queue before the hunt.
	waitFor(t, "the schema probe answered", 5*time.Second, func() bool {
		_, err := f.st.HostSchemaStatus(ctx, hosts[0].ID)
		live, _ := a.Queue().Peek(ctx, KindLive, 1000, 1<<30)
		return err == nil && len(live) == 0
	})
	probes := a.Stats().LiveQueries
	f.setRefuse(false, true)
	deadline := time.Now().Add(time.Minute)
	h := &store.Hunt{ID: "h1", SQL: "SELECT 6 * 7 AS answer", Targets: store.Targets{All: true}, Created: time.Now(), Deadline: deadline}
	if err := f.st.CreateHunt(ctx, h, []string{hosts[0].ID}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the hunt taken, then the server gone", 5*time.Second, func() bool {
		return f.refusing() && a.Stats().LiveQueries == probes+1
	})
	time.Sleep(200 * time.Millisecond) // a few failed sends
	stop()
	if n, _ := queuedKind(t, QueuePath(dir), KindLive); n != 1 {
		t.Fatalf("answers queued on disk: %d, want 1", n)
	}
	hh, _ := f.st.HuntHosts(ctx, "h1")
	if len(hh) != 1 || hh[0].Status != store.HuntPending {
		t.Fatalf("hunt host before the server is back = %+v", hh)
	}
	a, stop = run()
	defer stop()
	f.setRefuse(false, false)
	waitFor(t, "the queued answer", 5*time.Second, func() bool {
		hh, _ := f.st.HuntHosts(ctx, "h1")
		return len(hh) == 1 && hh[0].Status != store.HuntPending
	})
	hh, _ = f.st.HuntHosts(ctx, "h1")
	if hh[0].Status != store.HuntAnswered || hh[0].Rows != 1 || hh[0].AnsweredAt.After(deadline) {
		t.Errorf("hunt host = %+v", hh[0])
	}
	rows, _ := f.st.HuntRows(ctx, "h1", 10, 0)
	if len(rows) != 1 || !strings.Contains(string(rows[0].Columns), `"answer":"42"`) {
		t.Errorf("rows = %v", rows)
	}
	if st := a.Stats(); st.LiveQueries != 0 || st.LiveDropped != 0 {
		t.Errorf("restarted agent ran the hunt again or dropped it: %+v", st)
	}
	waitFor(t, "queue empty", 5*time.Second, func() bool { n, _ := queuedKind(t, QueuePath(dir), KindLive); return n == 0 })
}

// queuedKind counts the items of kind in the queue file at path, opened
// on its own (the agent may be stopped).
func queuedKind(t *testing.T, path, kind string) (int, error) {
	t.Helper()
	q, err := OpenQueue(path, 0)
	if err != nil {
		return 0, err
	}
	defer q.Close()
	items, err := q.Peek(context.Background(), kind, 1000, 1<<30)
	return len(items), err
}
