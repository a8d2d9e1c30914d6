package eventstore

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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

// TestOpenNewStoreTogether: several processes open one new store at the
// same moment (quarry up and quarry detonate started together) and write
// to it: every Open and every write succeeds. Before, one that read the
// schema version while another turned the new file to WAL got SQLITE_BUSY
// at once (SQLite's deadlock rule, which the busy timeout does not cover).
func TestOpenNewStoreTogether(t *testing.T) {
	if path := os.Getenv("QUARRY_TEST_OPEN_STORE"); path != "" {
		// Start together: at the time the test gave.
		at, _ := strconv.ParseInt(os.Getenv("QUARRY_TEST_OPEN_AT"), 10, 64)
		time.Sleep(time.Until(time.Unix(0, at)))
		s, err := Open(path)
		if err != nil {
			fmt.Println("open:", err)
			os.Exit(3)
		}
		e := telemetry.NewEvent(telemetry.KindExec, telemetry.SourceEBPF)
		e.Host, e.PID, e.PPID, e.Time, e.Path = "h", int64(os.Getpid()), 1, time.Now(), "/bin/true"
		e.StartTime = e.Time
		if _, err := s.Append(context.Background(), []telemetry.Event{e}); err != nil {
			fmt.Println("append:", err)
			os.Exit(4)
		}
		s.Close()
		os.Exit(0)
	}
	for round := range 4 {
		path := filepath.Join(t.TempDir(), "events.db")
		var cmds []*exec.Cmd
		var outs []*bytes.Buffer
		at := time.Now().Add(500 * time.Millisecond).UnixNano()
		for range 4 {
			cmd := exec.Command(os.Args[0], "-test.run=^TestOpenNewStoreTogether$")
			cmd.Env = append(os.Environ(), "QUARRY_TEST_OPEN_STORE="+path, fmt.Sprintf("QUARRY_TEST_OPEN_AT=%d", at))
			out := &bytes.Buffer{}
			cmd.Stdout, cmd.Stderr = out, out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			cmds, outs = append(cmds, cmd), append(outs, out)
		}
		for i, cmd := range cmds {
			if err := cmd.Wait(); err != nil {
				t.Errorf("round %d, process %d: %v: %s", round, i, err, outs[i])
			}
		}
	}
}
