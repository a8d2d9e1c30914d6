package process_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/extension/sqlengine"
	"github.com/quarry-sec/quarry/tables"
	"github.com/quarry-sec/quarry/tables/process"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

// benchEvents is the size of the benchmark store; QUARRY_BENCH_EVENTS
// overrides it (the store is built once and kept in the temp directory).
func benchEvents() int {
	if n, err := strconv.Atoi(os.Getenv("QUARRY_BENCH_EVENTS")); err == nil && n > 0 {
		return n
	}
	return 10_000_000
}

// benchStore returns a store of n events, one every 60 ms over a week
// (10M events) on 50 hosts, building it on first use.
func benchStore(b *testing.B, n int) *eventstore.Store {
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("quarry-bench-store-%d", n))
	path := filepath.Join(dir, eventstore.FileName)
	_, statErr := os.Stat(path + ".done")
	if statErr != nil {
		os.RemoveAll(dir) // an unfinished build from an interrupted run
	}
	st, err := eventstore.Open(path, eventstore.WithRetention(-1, -1))
	if err != nil {
		b.Fatal(err)
	}
	if statErr == nil {
		return st
	}
	b.Logf("building a %d-event store at %s (once)", n, path)
	start := time.Now()
	batch := make([]telemetry.Event, 0, 10000)
	for i := 0; i < n; i++ {
		e := telemetry.NewEvent(telemetry.KindExec, telemetry.SourceEBPF)
		e.Time = benchT0.Add(time.Duration(i) * 60 * time.Millisecond)
		e.Host = "host-" + strconv.Itoa(i%50)
		e.PID = int64(1000 + i%30000)
		e.PPID = int64(1 + i%500)
		e.Path = "/usr/bin/tool" + strconv.Itoa(i%200)
		e.Cmdline = e.Path + " --flag value-" + strconv.Itoa(i) + " /var/lib/some/longer/argument/path"
		e.Cwd = "/home/user" + strconv.Itoa(i%20)
		e.UID, e.EUID, e.GID, e.EGID, e.AUID = 1000, 1000, 1000, 1000, 1000
		e.ParentPath = "/bin/bash"
		e.ParentCmdline = "bash -l"
		batch = append(batch, e)
		if len(batch) == cap(batch) || i == n-1 {
			if _, err := st.Append(context.Background(), batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	b.Logf("built in %s (%.0f events/s)", time.Since(start), float64(n)/time.Since(start).Seconds())
	os.WriteFile(path+".done", nil, 0o600)
	return st
}

var benchT0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// BenchmarkTimeWindow10M: a one-minute window (1,000 events) of a
// 10M-event store, through SQL on the embedded engine. The first run builds
// the store (minutes): run with -timeout 0.
func BenchmarkTimeWindow10M(b *testing.B) {
	n := benchEvents()
	st := benchStore(b, n)
	defer st.Close()
	reg := tables.NewRegistry()
	if err := reg.Register(process.Events(st, process.Options{})); err != nil {
		b.Fatal(err)
	}
	e, err := sqlengine.Open(reg)
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	mid := benchT0.Add(time.Duration(n/2) * 60 * time.Millisecond).Unix()
	q := fmt.Sprintf("SELECT pid, path, cmdline FROM process_events WHERE time >= %d AND time < %d", mid, mid+60)
	b.ResetTimer()
	for b.Loop() {
		rows, err := e.Query(context.Background(), q)
		if err != nil {
			b.Fatal(err)
		}
		got := 0
		for rows.Next() {
			got++
		}
		rows.Close()
		if got != 1000 {
			b.Fatalf("window returned %d rows, want 1000", got)
		}
	}
}
