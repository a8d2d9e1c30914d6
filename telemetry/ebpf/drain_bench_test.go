//go:build linux

package ebpf

import (
	"context"
	"os"
	"testing"

	"github.com/quarry-sec/quarry/telemetry"
)

// BenchmarkIdleDrain is the cost of one drain of an empty ring: the price
// of each tick of the drain timer.
func BenchmarkIdleDrain(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("skipping: loading BPF programs needs root")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := Start(ctx, Options{DrainInterval: 1 << 40}, func(telemetry.Event) {})
	if err != nil {
		b.Skipf("skipping: BPF cannot load here: %v", err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.drain(); err != nil {
			b.Fatal(err)
		}
	}
}
