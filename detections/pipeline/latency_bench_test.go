package pipeline_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/detections/pipeline"
	"github.com/quarry-sec/quarry/detections/ruleset"
	"github.com/quarry-sec/quarry/extension/sqlengine"
	"github.com/quarry-sec/quarry/tables"
	"github.com/quarry-sec/quarry/tables/process"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/collect"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

// BenchmarkExecToRow measures, end to end, the time from starting a process
// to its row being visible in process_events through SQL: the live
// collector (eBPF, else cnproc), live detection with the builtin pack, the
// store's batched inserts, and the embedded engine. Needs root.
//
//	go test -run '^$' -bench ExecToRow -benchtime 1x ./detections/pipeline/
func BenchmarkExecToRow(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("skipping: the live collector needs root")
	}
	st, err := eventstore.Open(filepath.Join(b.TempDir(), "events.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	res, err := ruleset.Load(ruleset.Config{Builtin: true})
	if err != nil {
		b.Fatal(err)
	}
	p := pipeline.New(st, detections.NewEngine(res.Rules), pipeline.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	c, err := collect.Start(ctx, collect.Options{}, func(ev telemetry.Event) { p.Add(ev) })
	if err != nil {
		cancel()
		b.Skipf("skipping: no live source: %v", err)
	}
	defer func() { cancel(); c.Wait(); p.Close() }()
	reg := tables.NewRegistry()
	reg.Register(process.Events(st, process.Options{}))
	e, err := sqlengine.Open(reg)
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()

	const n = 200
	var lat []time.Duration
	for i := 0; i < b.N; i++ {
		marker := fmt.Sprintf("qlat-%d-%d", os.Getpid(), time.Now().UnixNano())
		var mu sync.Mutex
		started := map[string]time.Time{}
		launched := make(chan error, 1)
		go func() { // launch while the poller below watches process_events
			for j := 0; j < n; j++ {
				m := fmt.Sprintf("%s-%d", marker, j)
				mu.Lock()
				started[m] = time.Now()
				mu.Unlock()
				if err := exec.Command("/bin/true", m).Run(); err != nil {
					launched <- err
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
			launched <- nil
		}()
		seen := map[string]bool{}
		deadline := time.Now().Add(15 * time.Second)
		for len(seen) < n && time.Now().Before(deadline) {
			rows, err := e.Query(ctx, "SELECT cmdline FROM process_events WHERE syscall = 'execve' AND path = '/usr/bin/true' AND cmdline LIKE ?", "%"+marker+"%")
			if err != nil {
				b.Fatal(err)
			}
			now := time.Now()
			for rows.Next() {
				var cmd string
				rows.Scan(&cmd)
				m := cmd[strings.LastIndexByte(cmd, ' ')+1:]
				mu.Lock()
				t0, ok := started[m]
				mu.Unlock()
				if ok && !seen[m] {
					seen[m] = true
					lat = append(lat, now.Sub(t0))
				}
			}
			rows.Close()
			time.Sleep(2 * time.Millisecond)
		}
		if err := <-launched; err != nil {
			b.Fatal(err)
		}
		if len(seen) < n {
			b.Fatalf("only %d of %d execs visible in process_events within 5 s", len(seen), n)
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2])/1e6, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100])/1e6, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1])/1e6, "max-ms")
}
