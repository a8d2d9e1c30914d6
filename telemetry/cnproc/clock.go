//go:build linux

package cnproc

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// clocks holds the wall-clock time of the two kernel clocks' zero: boot
// (for /proc start times) and monotonic (for connector timestamps).
type clocks struct {
	bootWall, monoWall int64
}

func newClocks() (clocks, error) {
	var boot, mono, real unix.Timespec
	for _, c := range []struct {
		id int32
		ts *unix.Timespec
	}{{unix.CLOCK_BOOTTIME, &boot}, {unix.CLOCK_MONOTONIC, &mono}, {unix.CLOCK_REALTIME, &real}} {
		if err := unix.ClockGettime(c.id, c.ts); err != nil {
			return clocks{}, fmt.Errorf("cnproc: reading clock %d: %w", c.id, err)
		}
	}
	return clocks{bootWall: real.Nano() - boot.Nano(), monoWall: real.Nano() - mono.Nano()}, nil
}
