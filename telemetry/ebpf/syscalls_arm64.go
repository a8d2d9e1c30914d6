//go:build linux

package ebpf

// syscallOps maps arm64 (generic table) syscall numbers to ops.
var syscallOps = map[uint32]uint8{
	203: opConnect, 202: opAccept, 242: opAccept, 200: opBind, 201: opListen,
	117: opPtrace, 271: opVMWritev, 105: opInitModule, 273: opFinitMod, 279: opMemfd,
	146: opSetuid, 144: opSetgid, 145: opSetreuid, 143: opSetregid, 147: opSetresuid, 149: opSetresgid,
	151: opSetfsuid, 152: opSetfsgid, 91: opCapset,
	56: opOpenat, 437: opOpenat2, 57: opClose,
	35: opUnlinkat, 38: opRenameat, 276: opRenameat,
	52: opFchmod, 53: opFchmodat, 452: opFchmodat,
	63: opRead, 207: opRecvfrom, 212: opRecvmsg, 64: opWrite, 206: opSendto, 211: opSendmsg, 66: opWritev,
}
