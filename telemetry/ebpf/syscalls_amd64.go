//go:build linux

package ebpf

// syscallOps maps x86-64 syscall numbers to ops.
var syscallOps = map[uint32]uint8{
	42: opConnect, 43: opAccept, 288: opAccept, 49: opBind, 50: opListen,
	101: opPtrace, 311: opVMWritev, 175: opInitModule, 313: opFinitMod, 319: opMemfd,
	105: opSetuid, 106: opSetgid, 113: opSetreuid, 114: opSetregid, 117: opSetresuid, 119: opSetresgid,
	122: opSetfsuid, 123: opSetfsgid, 126: opCapset,
	2: opOpen, 257: opOpenat, 437: opOpenat2, 85: opCreat, 3: opClose,
	87: opUnlink, 84: opUnlink /* rmdir */, 263: opUnlinkat, 82: opRename, 264: opRenameat, 316: opRenameat,
	90: opChmod, 91: opFchmod, 268: opFchmodat, 452: opFchmodat,
	0: opRead, 45: opRecvfrom, 47: opRecvmsg, 1: opWrite, 44: opSendto, 46: opSendmsg, 20: opWritev,
}
