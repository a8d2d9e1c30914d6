//go:build unix

package detections

import (
	"syscall"
	"time"
)

// cpuClock is the process's CPU time (user + system): on a shared machine
// wall time includes other work's, so load benchmarks report both.
func cpuClock() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
