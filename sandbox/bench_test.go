//go:build linux

package sandbox

import (
	"context"
	"fmt"
	"os/exec"
	"testing"
	"time"
)

// BenchmarkDetonate runs a harmless sample (a shell script running three
// commands) bare, in the sandbox (setup, run, teardown: the detonation
// overhead is the difference with bare), and detonated (time to verdict:
// the sandbox with the eBPF collectors, detection, storing and the
// report; the rules are loaded once, outside the timing). Root only:
//
//	go test -run x -bench BenchmarkDetonate -benchtime 10x ./sandbox/
func BenchmarkDetonate(b *testing.B) {
	sample := script(b, "id >/dev/null; uname -a >/dev/null; cat /etc/hostname >/dev/null\n")
	b.Run("bare", func(b *testing.B) {
		for range b.N {
			if err := exec.Command(sample).Run(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sandbox", func(b *testing.B) {
		needSandbox(b)
		for i := range b.N {
			r, err := Prepare(fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), i), sample, Options{Timeout: 30 * time.Second})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := r.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			if err := r.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("detonate", func(b *testing.B) {
		needDetonate(b)
		loadTestRules(b)
		b.ResetTimer()
		for range b.N {
			detonate(b, sample, Options{})
		}
	})
}
