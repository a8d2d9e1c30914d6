//go:build linux

package cnproc

import (
	"encoding/binary"
	"fmt"
)

// Process connector constants (linux/cn_proc.h, linux/connector.h).
const (
	cnIdxProc         = 1
	cnValProc         = 1
	procCnMcastListen = 1
	procCnMcastIgnore = 2

	procEventFork = 0x00000001
	procEventExec = 0x00000002
	procEventExit = 0x80000000
)

// Offsets in a netlink message carrying a proc_event: a 16-byte nlmsghdr,
// a 20-byte cn_msg, then struct proc_event (what, cpu, timestamp_ns, then
// the event's data).
const (
	offCnIdx     = 16
	offCnVal     = 20
	offWhat      = 36
	offTimestamp = 44
	offData      = 52
	minMessage   = offData + 8
	exitMessage  = offData + 24
	forkMessage  = offData + 16
	nlmsgHdrLen  = 16
	cnMsgHdrLen  = 20
)

// procEvent is one decoded connector event.
type procEvent struct {
	what        uint32
	timestampNs uint64 // CLOCK_MONOTONIC
	// fork: parent and child; exec: pid/tgid; exit: pid/tgid and the
	// parent.
	pid, tgid             uint32
	parentPID, parentTGID uint32
	exitCode, exitSignal  uint32
}

// parseMessage decodes one netlink message (header included).
func parseMessage(b []byte) (procEvent, error) {
	ne := binary.NativeEndian
	if len(b) < minMessage {
		return procEvent{}, fmt.Errorf("cnproc: message of %d bytes", len(b))
	}
	if ne.Uint32(b[offCnIdx:]) != cnIdxProc || ne.Uint32(b[offCnVal:]) != cnValProc {
		return procEvent{}, fmt.Errorf("cnproc: message not from the process connector")
	}
	ev := procEvent{what: ne.Uint32(b[offWhat:]), timestampNs: ne.Uint64(b[offTimestamp:])}
	d := b[offData:]
	switch ev.what {
	case procEventExec:
		ev.pid, ev.tgid = ne.Uint32(d[0:]), ne.Uint32(d[4:])
	case procEventFork:
		if len(b) < forkMessage {
			return procEvent{}, fmt.Errorf("cnproc: fork message of %d bytes", len(b))
		}
		ev.parentPID, ev.parentTGID = ne.Uint32(d[0:]), ne.Uint32(d[4:])
		ev.pid, ev.tgid = ne.Uint32(d[8:]), ne.Uint32(d[12:])
	case procEventExit:
		if len(b) < exitMessage {
			return procEvent{}, fmt.Errorf("cnproc: exit message of %d bytes", len(b))
		}
		ev.pid, ev.tgid = ne.Uint32(d[0:]), ne.Uint32(d[4:])
		ev.exitCode, ev.exitSignal = ne.Uint32(d[8:]), ne.Uint32(d[12:])
		ev.parentPID, ev.parentTGID = ne.Uint32(d[16:]), ne.Uint32(d[20:])
	}
	return ev, nil
}

// listenMessage is the request that subscribes (or, with ignore, stops) the
// socket to process events.
func listenMessage(ignore bool) []byte {
	ne := binary.NativeEndian
	op := uint32(procCnMcastListen)
	if ignore {
		op = procCnMcastIgnore
	}
	b := make([]byte, nlmsgHdrLen+cnMsgHdrLen+4)
	ne.PutUint32(b[0:], uint32(len(b))) // nlmsg_len
	ne.PutUint16(b[4:], 3)              // nlmsg_type NLMSG_DONE
	ne.PutUint32(b[16:], cnIdxProc)
	ne.PutUint32(b[20:], cnValProc)
	ne.PutUint16(b[32:], 4) // cn_msg.len
	ne.PutUint32(b[36:], op)
	return b
}
