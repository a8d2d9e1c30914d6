//go:build linux

package ebpf

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// bootClock reads the wall-clock time of boot: CLOCK_REALTIME minus
// CLOCK_BOOTTIME, the clock of bpf_ktime_get_boot_ns and start_boottime.
func bootClock() (clock, error) {
	var boot, real unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &boot); err != nil {
		return clock{}, fmt.Errorf("ebpf: reading CLOCK_BOOTTIME: %w", err)
	}
	if err := unix.ClockGettime(unix.CLOCK_REALTIME, &real); err != nil {
		return clock{}, fmt.Errorf("ebpf: reading CLOCK_REALTIME: %w", err)
	}
	return clock{bootWall: real.Nano() - boot.Nano()}, nil
}
