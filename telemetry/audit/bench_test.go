//go:build linux

package audit

import (
	"context"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/internal/benchload"
	"github.com/quarry-sec/quarry/telemetry"
)

// TestHelperConnectLoad is the load of BenchmarkConnectCPU, run in a child
// process (the collector leaves its own pid out of its rules, and its CPU
// time is then the collector's): it connects to and accepts from a
// loopback listener as fast as it can for $QUARRY_CONNECT_LOAD and prints
// the number of connections.
func TestHelperConnectLoad(t *testing.T) { benchload.ServeConnectLoad(t) }

// BenchmarkConnectCPU measures the audit fallback's CPU time per 10,000
// events while a child process makes loopback TCP connections (one connect
// and one accept event each) as fast as it can for 3 s, like the eBPF
// collector's benchmark of the same name. "events" counts every event
// delivered in that time, the machine's other activity included; the
// audited process's own cost (the kernel formats the records in its
// syscalls) shows in conns/s.
//
//	go test -run '^$' -bench ConnectCPU -benchtime 1x ./telemetry/audit/
func BenchmarkConnectCPU(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("skipping: the audit socket needs root")
	}
	ctx, cancel := context.WithCancel(context.Background())
	var conns atomic.Int64
	c, err := Start(ctx, Options{}, func(ev telemetry.Event) {
		if ev.Field("Action") == "connect" && ev.Field("DestinationIp") == "127.0.0.1" {
			conns.Add(1)
		}
	})
	if err != nil {
		cancel()
		b.Skipf("skipping: the audit fallback cannot start here: %v", err)
	}
	defer func() {
		cancel()
		c.Wait()
	}()
	for i := 0; i < b.N; i++ {
		cpu0, ev0, c0 := benchload.CPUTime(), c.Stats().Events, conns.Load()
		made, err := benchload.RunConnectLoad("TestHelperConnectLoad", 3*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		// Wait for the queue to drain: every connect seen or dropped.
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			st := c.Stats()
			if conns.Load()-c0+int64(st.Lost+st.QueueFull+st.Overruns) >= int64(made) {
				break
			}
		}
		cpu, events := benchload.CPUTime()-cpu0, c.Stats().Events-ev0
		b.ReportMetric(float64(events), "events")
		b.ReportMetric(float64(made)/3, "conns/s")
		b.ReportMetric(float64(conns.Load()-c0)/float64(max(made, 1))*100, "connects-seen-%")
		b.ReportMetric(cpu.Seconds()/float64(max(events, 1))*1e4*1e3, "cpu-ms/10k-events")
		b.ReportMetric(cpu.Seconds()/3*100, "cpu-%")
		st := c.Stats()
		b.ReportMetric(float64(st.Lost+st.QueueFull+st.Overruns), "drops")
	}
}
