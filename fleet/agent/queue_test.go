package agent

import (
	"context"
	"fmt"
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
		if err := q.Push(ctx, LogResult, fmt.Appendf(nil, `{"i":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	q.Push(ctx, LogStatus, []byte(`{"s":1}`))
	items, err := q.Peek(ctx, LogResult, 3, 1<<20)
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
	items, _ = q.Peek(ctx, LogResult, 10, 1<<20)
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
		if err := q.Push(ctx, LogResult, append([]byte(nil), body...)); err != nil {
			t.Fatal(err)
		}
	}
	n, bytes, _ := q.Len(ctx)
	if n != 3 || bytes != 90 {
		t.Errorf("Len = %d, %d; want 3, 90", n, bytes)
	}
	items, _ := q.Peek(ctx, LogResult, 10, 1<<20)
	if items[0].Body[0] != 'c' {
		t.Errorf("oldest kept = %c, want c", items[0].Body[0])
	}
	if d, _ := q.Dropped(ctx); d != 2 {
		t.Errorf("Dropped = %d, want 2", d)
	}
	q.Push(ctx, LogResult, make([]byte, 200)) // larger than the queue
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
		q.Push(context.Background(), LogResult, []byte(`{"name":"x","diffResults":{"added":[],"removed":[]}}`))
	}
	q.Close()
	a, _ := startAgent(t, srv.URL, "s", dir, sqlQuerier{hitsDB(t)})
	_ = a
	waitFor(t, "drop report", 5*time.Second, func() bool { _, s, _, _ := f.snapshot(); return len(s) == 1 })
	_, s, _, _ := f.snapshot()
	if s[0].Severity != SeverityWarning || !strings.Contains(s[0].Message, "dropped 3 logs") {
		t.Errorf("status = %+v", s[0])
	}
}
