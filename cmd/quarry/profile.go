package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
)

// profileFromEnv starts a CPU profile of the whole process when
// $QUARRY_CPUPROFILE names a file, and returns what writes it (and the
// allocation profile to $QUARRY_MEMPROFILE, if set) at exit. For
// performance work on a command start to exit, e.g.
//
//	QUARRY_CPUPROFILE=/tmp/cpu.out quarry scan … && go tool pprof -top quarry /tmp/cpu.out
func profileFromEnv() func() {
	cpu, mem := os.Getenv("QUARRY_CPUPROFILE"), os.Getenv("QUARRY_MEMPROFILE")
	if cpu == "" && mem == "" {
		return func() {}
	}
	var f *os.File
	if cpu != "" {
		var err error
		if f, err = os.Create(cpu); err != nil {
			fmt.Fprintf(os.Stderr, "quarry: QUARRY_CPUPROFILE: %v\n", err)
		} else if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(os.Stderr, "quarry: QUARRY_CPUPROFILE: %v\n", err)
			f.Close()
			f = nil
		}
	}
	return func() {
		if f != nil {
			pprof.StopCPUProfile()
			f.Close()
		}
		if mem != "" {
			m, err := os.Create(mem)
			if err != nil {
				fmt.Fprintf(os.Stderr, "quarry: QUARRY_MEMPROFILE: %v\n", err)
				return
			}
			runtime.GC()
			if err := pprof.Lookup("allocs").WriteTo(m, 0); err != nil {
				fmt.Fprintf(os.Stderr, "quarry: QUARRY_MEMPROFILE: %v\n", err)
			}
			m.Close()
		}
	}
}
