//go:build linux

package ebpf

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/internal/benchload"
	"github.com/quarry-sec/quarry/telemetry"
)

// TestHelperConnectLoad is the load of BenchmarkConnectCPU, run in a child
// process so that the benchmark's CPU time is the collector's: it connects
// to and accepts from a loopback listener as fast as it can for
// $QUARRY_CONNECT_LOAD and prints the number of connections.
func TestHelperConnectLoad(t *testing.T) { benchload.ServeConnectLoad(t) }

// BenchmarkConnectCPU measures the collector's CPU time per 10,000 events
// while a child process makes loopback TCP connections (one connect and one
// accept event each) as fast as it can for 3 s. "events" counts every event
// delivered in that time, the machine's other activity included.
//
//	go test -run '^$' -bench ConnectCPU -benchtime 1x ./telemetry/ebpf/
func BenchmarkConnectCPU(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("skipping: loading BPF programs needs root")
	}
	ctx, cancel := context.WithCancel(context.Background())
	var conns int
	c, err := Start(ctx, Options{NetRate: -1}, func(ev telemetry.Event) {
		if ev.Field("Action") == "connect" && ev.Field("DestinationIp") == "127.0.0.1" {
			conns++
		}
	})
	if err != nil {
		cancel()
		b.Skipf("skipping: BPF cannot load here: %v", err)
	}
	defer func() {
		cancel()
		c.Wait()
	}()
	for i := 0; i < b.N; i++ {
		cpu0, ev0 := benchload.CPUTime(), c.Stats().Events
		made, err := benchload.RunConnectLoad("TestHelperConnectLoad", 3*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond) // the last drain
		cpu, events := benchload.CPUTime()-cpu0, c.Stats().Events-ev0
		b.ReportMetric(float64(events), "events")
		b.ReportMetric(float64(made)/3, "conns/s")
		b.ReportMetric(cpu.Seconds()/float64(max(events, 1))*1e4*1e3, "cpu-ms/10k-events")
		b.ReportMetric(cpu.Seconds()/3*100, "cpu-%")
		st := c.Stats()
		b.ReportMetric(float64(st.Drops), "drops")
		b.Logf("connections made %d, connect events for them %d, stats %+v", made, conns, st)
	}
}

// BenchmarkGoBuild measures the wall time of `go build -a` of this package
// and its dependencies (the standard library included, a fresh GOCACHE
// each time: several thousand files written) with no collector, with the
// collector without its file capture, and with it; and the file events
// delivered, filtered and rate-limited. Minutes long:
//
//	QUARRY_BENCH_GOBUILD=1 go test -run '^$' -bench GoBuild -benchtime 1x -timeout 30m ./telemetry/ebpf/
func BenchmarkGoBuild(b *testing.B) {
	if os.Getenv("QUARRY_BENCH_GOBUILD") == "" {
		b.Skip("skipping: set QUARRY_BENCH_GOBUILD=1 (minutes long)")
	}
	if os.Geteuid() != 0 {
		b.Skip("skipping: loading BPF programs needs root")
	}
	build := func(b *testing.B) time.Duration {
		cmd := exec.Command("go", "build", "-a", ".")
		cmd.Env = append(os.Environ(), "GOCACHE="+b.TempDir())
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("go build: %v: %s", err, out)
		}
		return time.Since(start)
	}
	for _, mode := range []string{"none", "no-file", "file"} {
		b.Run(mode, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				var c *Collector
				var files uint64
				ctx, cancel := context.WithCancel(context.Background())
				if mode != "none" {
					opts := Options{}
					if mode == "no-file" {
						opts.Disable = []string{CaptureFile}
					}
					var err error
					c, err = Start(ctx, opts, func(ev telemetry.Event) {
						if strings.HasPrefix(ev.Category, "file_") {
							files++
						}
					})
					if err != nil {
						cancel()
						b.Skipf("skipping: BPF cannot load here: %v", err)
					}
				}
				wall := build(b)
				cancel()
				b.ReportMetric(wall.Seconds(), "wall-s")
				if c != nil {
					c.Wait()
					st := c.Stats()
					b.ReportMetric(float64(files), "file-events")
					b.ReportMetric(float64(st.RateLimitedFile), "file-rate-limited")
					b.ReportMetric(float64(st.Filtered), "file-filtered")
					b.ReportMetric(float64(st.Drops), "drops")
				}
			}
		})
	}
}

// BenchmarkSyscallHook is the cost the sys_enter/sys_exit programs add to
// a syscall Quarry does not watch (getppid: one array lookup at enter, one
// hash lookup at exit) and to a watched one that is reported nothing
// (close of a file opened read-only), without and with the collector.
func BenchmarkSyscallHook(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("skipping: loading BPF programs needs root")
	}
	f, err := os.Open("/proc/self/exe")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	for _, on := range []bool{false, true} {
		name := map[bool]string{false: "off", true: "on"}[on]
		var c *Collector
		ctx, cancel := context.WithCancel(context.Background())
		if on {
			if c, err = Start(ctx, Options{}, func(telemetry.Event) {}); err != nil {
				cancel()
				b.Skipf("skipping: BPF cannot load here: %v", err)
			}
		}
		b.Run("getppid/"+name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				syscall.Getppid()
			}
		})
		b.Run("dup-close/"+name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				fd, _ := syscall.Dup(int(f.Fd()))
				syscall.Close(fd)
			}
		})
		cancel()
		if c != nil {
			c.Wait()
		}
	}
}
