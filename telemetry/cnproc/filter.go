//go:build linux

package cnproc

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// toNet converts a host-order word into the value a classic BPF load reads
// from the same bytes (classic BPF loads are big-endian).
func toNet(v uint32) uint32 {
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], v)
	return binary.BigEndian.Uint32(b[:])
}

// filterProgram keeps exec events, process (not thread) forks and process
// (not thread) exits from the process connector, and drops everything else
// in the kernel.
func filterProgram() []bpf.Instruction {
	const (
		accept = 0xffffffff
		drop   = 0
	)
	// Jumps are counted in instructions skipped; the layout is:
	//  0-3  the message comes from the process connector
	//  4-7  dispatch on what
	//  8-9  drop / accept
	//  10-14 fork: child pid == child tgid
	//  15-19 exit: pid == tgid
	prog := []bpf.Instruction{
		bpf.LoadAbsolute{Off: offCnIdx, Size: 4},                                // 0
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: toNet(cnIdxProc), SkipFalse: 6},    // 1 → 8
		bpf.LoadAbsolute{Off: offCnVal, Size: 4},                                // 2
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: toNet(cnValProc), SkipFalse: 4},    // 3 → 8
		bpf.LoadAbsolute{Off: offWhat, Size: 4},                                 // 4
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: toNet(procEventExec), SkipTrue: 3}, // 5 → 9
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: toNet(procEventFork), SkipTrue: 3}, // 6 → 10
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: toNet(procEventExit), SkipTrue: 7}, // 7 → 15
		bpf.RetConstant{Val: drop},                                              // 8
		bpf.RetConstant{Val: accept},                                            // 9
		bpf.LoadAbsolute{Off: offData + 12, Size: 4},                            // 10 child tgid
		bpf.StoreScratch{Src: bpf.RegA, N: 0},                                   // 11
		bpf.LoadScratch{Dst: bpf.RegX, N: 0},                                    // 12
		bpf.LoadAbsolute{Off: offData + 8, Size: 4},                             // 13 child pid
		bpf.JumpIfX{Cond: bpf.JumpEqual, SkipTrue: 6, SkipFalse: 5},             // 14 → 21 / 20
		bpf.LoadAbsolute{Off: offData + 4, Size: 4},                             // 15 tgid
		bpf.StoreScratch{Src: bpf.RegA, N: 0},                                   // 16
		bpf.LoadScratch{Dst: bpf.RegX, N: 0},                                    // 17
		bpf.LoadAbsolute{Off: offData, Size: 4},                                 // 18 pid
		bpf.JumpIfX{Cond: bpf.JumpEqual, SkipTrue: 1},                           // 19 → 21
		bpf.RetConstant{Val: drop},                                              // 20
		bpf.RetConstant{Val: accept},                                            // 21
	}
	return prog
}

// attachFilter installs filterProgram on the socket.
func attachFilter(fd int) error {
	raw, err := bpf.Assemble(filterProgram())
	if err != nil {
		return fmt.Errorf("cnproc: assembling the socket filter: %w", err)
	}
	filter := make([]unix.SockFilter, len(raw))
	for i, ins := range raw {
		filter[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		return fmt.Errorf("cnproc: attaching the socket filter: %w", err)
	}
	return nil
}
