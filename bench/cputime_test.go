package bench

import (
	"syscall"
	"time"
)

// cpuClock reads the process's CPU time (user + system). On this shared
// 2-vCPU machine wall time includes the time other work holds the core;
// with GOMAXPROCS=1 the process's CPU time is the benchmark's own work, so
// the benchmarks report both (cpu-µs/event beside events/s).
func cpuClock() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
