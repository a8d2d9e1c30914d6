//go:build linux

package audit

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/telemetry"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestHelperConnectLoad is the load of BenchmarkConnectCPU, run in a child
// process (the collector leaves its own pid out of its rules, and its CPU
// time is then the collector's): it connects to and accepts from a
// loopback listener as fast as it can for $QUARRY_CONNECT_LOAD and prints
// the number of connections.
func TestHelperConnectLoad(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("QUARRY_CONNECT_LOAD"))
	if err != nil {
		t.Skip("only run by BenchmarkConnectCPU")
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	n := 0
	for end := time.Now().Add(d); time.Now().Before(end); n++ {
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		s.Close()
	}
	fmt.Printf("connections %d\n", n)
}

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
		cpu0, ev0, c0 := cpuTime(), c.Stats().Events, conns.Load()
		cmd := exec.Command(os.Args[0], "-test.run", "^TestHelperConnectLoad$", "-test.v")
		cmd.Env = append(os.Environ(), "QUARRY_CONNECT_LOAD=3s")
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("%v: %s", err, out)
		}
		var made int
		for _, line := range strings.Split(string(out), "\n") {
			if n, ok := strings.CutPrefix(line, "connections "); ok {
				made, _ = strconv.Atoi(n)
			}
		}
		// Wait for the queue to drain: every connect seen or dropped.
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			st := c.Stats()
			if conns.Load()-c0+int64(st.Lost+st.QueueFull+st.Overruns) >= int64(made) {
				break
			}
		}
		cpu, events := cpuTime()-cpu0, c.Stats().Events-ev0
		b.ReportMetric(float64(events), "events")
		b.ReportMetric(float64(made)/3, "conns/s")
		b.ReportMetric(float64(conns.Load()-c0)/float64(max(made, 1))*100, "connects-seen-%")
		b.ReportMetric(cpu.Seconds()/float64(max(events, 1))*1e4*1e3, "cpu-ms/10k-events")
		b.ReportMetric(cpu.Seconds()/3*100, "cpu-%")
		st := c.Stats()
		b.ReportMetric(float64(st.Lost+st.QueueFull+st.Overruns), "drops")
	}
}
