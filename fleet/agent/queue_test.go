package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/quarry-sec/quarry/fleet/osqwire"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestQueuePeekAckAndReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "q.db")
	q, err := OpenQueue(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := q.Push(ctx, osqwire.LogResult, fmt.Appendf(nil, `{"i":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	q.Push(ctx, osqwire.LogStatus, []byte(`{"s":1}`))
	items, err := q.Peek(ctx, osqwire.LogResult, 3, 1<<20)
	if err != nil || len(items) != 3 || string(items[0].Body) != `{"i":0}` {
		t.Fatalf("Peek = %v, %v", items, err)
	}
	if err := q.Ack(ctx, items); err != nil {
		t.Fatal(err)
	}
	q.Close()
	q, err = OpenQueue(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	n, bytes, _ := q.Len(ctx)
	if n != 3 || bytes != int64(len(`{"i":3}`)*2+len(`{"s":1}`)) {
		t.Errorf("Len = %d, %d", n, bytes)
	}
	items, _ = q.Peek(ctx, osqwire.LogResult, 10, 1<<20)
	if len(items) != 2 || string(items[0].Body) != `{"i":3}` {
		t.Errorf("after reopen: %v", items)
	}
}

func TestQueueBoundDropsOldestAndCounts(t *testing.T) {
	ctx := context.Background()
	q, err := OpenQueue(filepath.Join(t.TempDir(), "q.db"), 100)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	body := make([]byte, 30)
	for i := range 5 {
		body[0] = byte('a' + i)
		if err := q.Push(ctx, osqwire.LogResult, append([]byte(nil), body...)); err != nil {
			t.Fatal(err)
		}
	}
	n, bytes, _ := q.Len(ctx)
	if n != 3 || bytes != 90 {
		t.Errorf("Len = %d, %d; want 3, 90", n, bytes)
	}
	items, _ := q.Peek(ctx, osqwire.LogResult, 10, 1<<20)
	if items[0].Body[0] != 'c' {
		t.Errorf("oldest kept = %c, want c", items[0].Body[0])
	}
	if d, _ := q.Dropped(ctx); d != 2 {
		t.Errorf("Dropped = %d, want 2", d)
	}
	q.Push(ctx, osqwire.LogResult, make([]byte, 200)) // larger than the queue
	if d, _ := q.Dropped(ctx); d != 3 {
		t.Errorf("Dropped = %d, want 3", d)
	}
	q.Reported(ctx, 3)
	if d, _ := q.Dropped(ctx); d != 0 {
		t.Errorf("Dropped after report = %d", d)
	}
}

func TestAgentReportsDrops(t *testing.T) {
	f, srv := newFakeFleet(t, "s")
	dir := t.TempDir()
	q, err := OpenQueue(QueuePath(dir), 64)
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		q.Push(context.Background(), osqwire.LogResult, []byte(`{"name":"x","diffResults":{"added":[],"removed":[]}}`))
	}
	q.Close()
	a, _ := startAgent(t, srv.URL, "s", dir, sqlQuerier{hitsDB(t)})
	_ = a
	waitFor(t, "drop report", 5*time.Second, func() bool { _, s, _, _ := f.snapshot(); return len(s) == 1 })
	_, s, _, _ := f.snapshot()
	if s[0].Severity != osqwire.SeverityWarning || !strings.Contains(s[0].Message, "dropped 3 logs") {
		t.Errorf("status = %+v", s[0])
	}
}

// Queued live answers past their hunt's deadline (or, without one, too
// old) are dropped and counted when the server is back; the others are
// sent in one distributed write.
func TestQueuedAnswersExpire(t *testing.T) {
	f, srv := newFakeFleet(t, "s")
	a, err := New(Config{FleetURL: srv.URL, EnrollSecret: "s", HostIdentifier: "host-a", DataDir: t.TempDir(),
		Engine: sqlQuerier{hitsDB(t)}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Queue().Close()
	ctx := context.Background()
	now := time.Now()
	var bodies [][]byte
	for _, qa := range []queuedAnswer{
		{ID: "late", Deadline: now.Add(-2 * deadlineGrace).Unix(), Queued: now.Add(-time.Hour).Unix(),
			Rows: []map[string]string{{"a": "1"}}},
		{ID: "in-time", Deadline: now.Add(time.Minute).Unix(), Queued: now.Unix(), Rows: []map[string]string{{"a": "2"}}},
		{ID: "old-no-deadline", Queued: now.Add(-answerMaxAge - time.Minute).Unix()},
		{ID: "failed", Queued: now.Unix(), Status: 1, Message: "no such table: x"},
	} {
		b, err := json.Marshal(qa)
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, b)
	}
	if err := a.Queue().Push(ctx, KindLive, bodies...); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	_, _, writes, _ := f.snapshot()
	if len(writes) != 1 {
		t.Fatalf("writes = %+v, want 1", writes)
	}
	w := writes[0]
	if len(w.Statuses) != 2 || w.Queries["in-time"][0]["a"] != "2" || w.Statuses["failed"] != 1 ||
		w.Messages["failed"] != "no such table: x" {
		t.Errorf("write = %+v", w)
	}
	if d := a.Stats().LiveDropped; d != 2 {
		t.Errorf("LiveDropped = %d, want 2", d)
	}
	if n, _, _ := a.Queue().Len(ctx); n != 0 {
		t.Errorf("%d items still queued", n)
	}
}
