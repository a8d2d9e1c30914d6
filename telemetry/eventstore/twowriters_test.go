package eventstore

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/telemetry"
)

// TestTwoWritersOneStore: two Stores open on one file (quarry up's writer
// and a quarry detonate or import beside it) append at the same time;
// every batch is stored, none fails with SQLITE_BUSY (a deferred
// transaction that read before writing failed at once when the other
// writer had committed meanwhile).
func TestTwoWritersOneStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	ctx := context.Background()
	var stores [2]*Store
	for i := range stores {
		s, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores[i] = s
	}
	const batches, per = 40, 5
	var wg sync.WaitGroup
	errs := make(chan error, 2*batches)
	start := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	for w, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				evs := make([]telemetry.Event, per)
				for i := range evs {
					pid := int64(w*100000 + b*100 + i + 2)
					e := telemetry.NewEvent(telemetry.KindExec, telemetry.SourceEBPF)
					e.Host, e.PID, e.PPID = "h", pid, 1
					e.Time = start.Add(time.Duration(pid) * time.Millisecond)
					e.StartTime = e.Time
					e.Path, e.Cmdline = "/bin/true", fmt.Sprintf("true %d", pid)
					evs[i] = e
				}
				if _, err := s.Append(ctx, evs); err != nil {
					errs <- fmt.Errorf("writer %d batch %d: %w", w, b, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	n := 0
	if err := stores[0].Scan(ctx, Filter{}, func(*StoredEvent) bool { n++; return true }); err != nil {
		t.Fatal(err)
	}
	if n != 2*batches*per {
		t.Errorf("stored %d events, want %d", n, 2*batches*per)
	}
}
