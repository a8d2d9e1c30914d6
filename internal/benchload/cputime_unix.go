//go:build unix

package benchload

import (
	"syscall"
	"time"
)

// CPUTime is the process's CPU time (user + system). On a shared machine
// wall time includes the time other work holds the core, so benchmarks
// report both; with GOMAXPROCS=1 the CPU time is the benchmark's own work.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
