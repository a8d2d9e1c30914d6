//go:build linux

package ebpf

// Syscall operations, the values of the syscall_ops map (bpf/activity.h).
const (
	opConnect    = 1
	opAccept     = 2
	opBind       = 3
	opListen     = 4
	opPtrace     = 5
	opVMWritev   = 6
	opInitModule = 7
	opFinitMod   = 8
	opMemfd      = 9
	opSetuid     = 10
	opSetgid     = 11
	opSetreuid   = 12
	opSetregid   = 13
	opSetresuid  = 14
	opSetresgid  = 15
	opSetfsuid   = 16
	opSetfsgid   = 17
	opCapset     = 18
	opOpen       = 19
	opOpenat     = 20
	opOpenat2    = 21
	opCreat      = 22
	opClose      = 23
	opUnlink     = 24
	opUnlinkat   = 25
	opRename     = 26
	opRenameat   = 27
	opChmod      = 28
	opFchmod     = 29
	opFchmodat   = 30
	opRead       = 31
	opRecvfrom   = 32
	opRecvmsg    = 33
	opWrite      = 34
	opSendto     = 35
	opSendmsg    = 36
	opWritev     = 37
)

// captureOps says which capture each op serves: a disabled capture leaves
// its syscalls out of the table.
var captureOps = map[string][]uint8{
	CaptureNetwork:       {opConnect, opAccept, opBind, opListen},
	CaptureProcessAccess: {opPtrace, opVMWritev},
	CaptureDriverLoad:    {opInitModule, opFinitMod},
	CaptureMemfd:         {opMemfd},
	CapturePrivilege: {opSetuid, opSetgid, opSetreuid, opSetregid, opSetresuid, opSetresgid, opSetfsuid,
		opSetfsgid, opCapset},
	CaptureDNS: {opRead, opRecvfrom, opRecvmsg, opWrite, opSendto, opSendmsg, opWritev},
	CaptureFile: {opOpen, opOpenat, opOpenat2, opCreat, opClose, opUnlink, opUnlinkat, opRename, opRenameat,
		opChmod, opFchmod, opFchmodat},
}
