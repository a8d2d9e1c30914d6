//go:build linux

package collect

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/internal/benchload"
	"github.com/quarry-sec/quarry/telemetry"
)

// BenchmarkCapture measures, per burst of execs of /bin/true with a marker
// argument run by separate shell processes (so that the benchmark process's
// CPU time is the collector's): the share of execs caught, the share caught
// with their full argv, the collector's CPU seconds, and the latency from
// fork to the callback (p50, p99). The collector sees every process on the
// machine, so "events" counts all it delivered during the burst, the
// benchmark's and others'.
//
//	go test -run '^$' -bench Capture -benchtime 1x ./telemetry/collect/
func BenchmarkCapture(b *testing.B) {
	for _, src := range []string{SourceEBPF, SourceCnProc} {
		for _, shape := range []struct {
			name            string
			launchers, each int
		}{{"2000x1", 1, 2000}, {"10000x4", 4, 2500}} {
			b.Run(src+"/"+shape.name, func(b *testing.B) { benchCapture(b, src, shape.launchers, shape.each) })
		}
	}
}

// burst records the execs of one burst.
type burst struct {
	mu        sync.Mutex
	prefix    string
	launchers map[int64]bool  // pids of the launching shells
	caught    map[string]bool // marker → full argv
	latencies []time.Duration
}

func (br *burst) add(ev telemetry.Event) {
	if ev.Kind != telemetry.KindExec {
		return
	}
	now := time.Now()
	br.mu.Lock()
	defer br.mu.Unlock()
	if br.prefix == "" {
		return
	}
	var marker string
	if len(ev.Args) == 2 && strings.HasPrefix(ev.Args[1], br.prefix) {
		marker = ev.Args[1]
	} else if ev.Partial && br.launchers[ev.PPID] {
		marker = fmt.Sprintf("partial-%d", ev.PID) // caught, argv lost
	} else {
		return
	}
	if _, dup := br.caught[marker]; dup {
		return
	}
	br.caught[marker] = slices.Equal(ev.Args[:min(1, len(ev.Args))], []string{"/bin/true"})
	br.latencies = append(br.latencies, now.Sub(ev.StartTime))
}

func benchCapture(b *testing.B, source string, launchers, each int) {
	if os.Geteuid() != 0 {
		b.Skip("skipping: live collectors need root")
	}
	br := &burst{}
	ctx, cancel := context.WithCancel(context.Background())
	c, err := Start(ctx, Options{Source: source}, br.add)
	if err != nil {
		cancel()
		b.Skipf("skipping: source %s cannot start here: %v", source, err)
	}
	defer func() {
		cancel()
		c.Wait()
	}()
	total := launchers * each
	var capture, withArgv, cpu, p50, p99, events float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		br.mu.Lock()
		br.prefix = fmt.Sprintf("qb-%d-%d-%d-", os.Getpid(), time.Now().UnixNano(), i)
		br.caught, br.latencies, br.launchers = map[string]bool{}, nil, map[int64]bool{}
		prefix := br.prefix
		br.mu.Unlock()

		cpu0, events0 := benchload.CPUTime(), c.Stats().Events
		var cmds []*exec.Cmd
		for l := 0; l < launchers; l++ {
			script := fmt.Sprintf("for i in $(seq %d); do /bin/true %s%d-$i; done", each, prefix, l)
			cmd := exec.Command("/bin/sh", "-c", script)
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			cmds = append(cmds, cmd)
			br.mu.Lock()
			br.launchers[int64(cmd.Process.Pid)] = true
			br.mu.Unlock()
		}
		for _, cmd := range cmds {
			if err := cmd.Wait(); err != nil {
				b.Fatal(err)
			}
		}
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			br.mu.Lock()
			n := len(br.caught)
			br.mu.Unlock()
			if n >= total {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond) // let late duplicates and drains settle
		cpu += (benchload.CPUTime() - cpu0).Seconds()
		events += float64(c.Stats().Events - events0)

		br.mu.Lock()
		full := 0
		for _, ok := range br.caught {
			if ok {
				full++
			}
		}
		capture += 100 * float64(len(br.caught)) / float64(total)
		withArgv += 100 * float64(full) / float64(total)
		slices.Sort(br.latencies)
		if n := len(br.latencies); n > 0 {
			p50 += float64(br.latencies[n/2]) / 1e6
			p99 += float64(br.latencies[n*99/100]) / 1e6
		}
		br.prefix = ""
		br.mu.Unlock()
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(capture/n, "capture-%")
	b.ReportMetric(withArgv/n, "argv-%")
	b.ReportMetric(cpu/n, "cpu-s")
	b.ReportMetric(p50/n, "p50-ms")
	b.ReportMetric(p99/n, "p99-ms")
	b.ReportMetric(events/n, "events")
	st := c.Stats()
	b.ReportMetric(float64(st.Drops+st.Lost), "drops")
}
