//go:build linux

package sandbox

import (
	"encoding/binary"
	"fmt"
	"runtime"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// The seccomp filter is classic BPF over struct seccomp_data: nr at offset
// 0, arch at 4, the arguments from 16 (8 bytes each, the low half first on
// the little-endian machines built for). It is assembled with
// golang.org/x/net/bpf, already a dependency, rather than a seccomp
// library: the program is a list of compares, and x/net/bpf's VM runs it
// in the tests.
const (
	seccompRetKillProcess = 0x80000000
	seccompRetErrno       = 0x00050000
	seccompRetAllow       = 0x7fff0000

	offNr   = 0
	offArch = 4
	offArg0 = 16
)

// deniedSyscalls are the calls the sample gets EPERM for: they load code
// into the kernel, change what is mounted or which namespaces it lives in,
// reach the kernel's keyrings, BPF or perf, or change the host's clock,
// swap, accounting or power. Every one of them either needs a capability
// the sandbox does not give or would reach past the sandbox if one were
// left.
var deniedSyscalls = append([]uintptr{
	unix.SYS_KEXEC_LOAD, unix.SYS_KEXEC_FILE_LOAD,
	unix.SYS_INIT_MODULE, unix.SYS_FINIT_MODULE, unix.SYS_DELETE_MODULE,
	unix.SYS_MOUNT, unix.SYS_UMOUNT2, unix.SYS_PIVOT_ROOT, unix.SYS_MOUNT_SETATTR,
	unix.SYS_FSOPEN, unix.SYS_FSCONFIG, unix.SYS_FSMOUNT, unix.SYS_FSPICK, unix.SYS_MOVE_MOUNT, unix.SYS_OPEN_TREE,
	unix.SYS_UNSHARE, unix.SYS_SETNS,
	unix.SYS_BPF, unix.SYS_PERF_EVENT_OPEN, unix.SYS_USERFAULTFD,
	unix.SYS_OPEN_BY_HANDLE_AT, unix.SYS_NAME_TO_HANDLE_AT,
	unix.SYS_ADD_KEY, unix.SYS_REQUEST_KEY, unix.SYS_KEYCTL,
	unix.SYS_SWAPON, unix.SYS_SWAPOFF, unix.SYS_REBOOT, unix.SYS_ACCT, unix.SYS_QUOTACTL, unix.SYS_SYSLOG,
	unix.SYS_SETTIMEOFDAY, unix.SYS_CLOCK_SETTIME, unix.SYS_ADJTIMEX, unix.SYS_CLOCK_ADJTIME,
}, archDenied...)

// newNamespaceFlags are the clone flags that make a namespace: clone with
// any of them is denied like unshare.
const newNamespaceFlags = unix.CLONE_NEWUSER | unix.CLONE_NEWNS | unix.CLONE_NEWNET | unix.CLONE_NEWPID |
	unix.CLONE_NEWIPC | unix.CLONE_NEWUTS | unix.CLONE_NEWCGROUP | unix.CLONE_NEWTIME

// seccompFilter returns the filter as bwrap's --seccomp reads it: the
// program's struct sock_filter array, native byte order.
func seccompFilter() ([]byte, error) {
	arch, ok := auditArch[runtime.GOARCH]
	if !ok {
		return nil, fmt.Errorf("seccomp filter: not built for %s", runtime.GOARCH)
	}
	prog := seccompProgram(arch)
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("seccomp filter: %w", err)
	}
	out := make([]byte, 0, 8*len(raw))
	for _, r := range raw {
		out = binary.NativeEndian.AppendUint16(out, r.Op)
		out = append(out, r.Jt, r.Jf)
		out = binary.NativeEndian.AppendUint32(out, r.K)
	}
	return out, nil
}

// seccompProgram lays the filter out as:
//
//	load arch; not ours → kill
//	load nr; x32 calls (nr ≥ 0x40000000) → deny; each denied nr → deny
//	clone3 → ENOSYS (its flags are in memory a filter cannot read; libc
//	falls back to clone); clone → check its flags
//	allow
//	clone: load flags; any namespace flag → deny; allow
//	deny: EPERM
func seccompProgram(arch uint32) []bpf.Instruction {
	var p []bpf.Instruction
	// Jumps are filled in once the labels' positions are known.
	type fix struct {
		at     int
		label  string
		onTrue bool
	}
	var fixes []fix
	jump := func(cond bpf.JumpTest, val uint32, label string, onTrue bool) {
		fixes = append(fixes, fix{len(p), label, onTrue})
		p = append(p, bpf.JumpIf{Cond: cond, Val: val})
	}
	labels := map[string]int{}
	p = append(p, bpf.LoadAbsolute{Off: offArch, Size: 4})
	jump(bpf.JumpNotEqual, arch, "kill", true)
	p = append(p, bpf.LoadAbsolute{Off: offNr, Size: 4})
	jump(bpf.JumpGreaterOrEqual, 0x40000000, "deny", true)
	for _, nr := range deniedSyscalls {
		jump(bpf.JumpEqual, uint32(nr), "deny", true)
	}
	jump(bpf.JumpEqual, unix.SYS_CLONE3, "enosys", true)
	jump(bpf.JumpEqual, unix.SYS_CLONE, "clone", true)
	p = append(p, bpf.RetConstant{Val: seccompRetAllow})
	labels["clone"] = len(p)
	p = append(p, bpf.LoadAbsolute{Off: offArg0, Size: 4})
	jump(bpf.JumpBitsSet, newNamespaceFlags, "deny", true)
	p = append(p, bpf.RetConstant{Val: seccompRetAllow})
	labels["deny"] = len(p)
	p = append(p, bpf.RetConstant{Val: seccompRetErrno | uint32(unix.EPERM)})
	labels["enosys"] = len(p)
	p = append(p, bpf.RetConstant{Val: seccompRetErrno | uint32(unix.ENOSYS)})
	labels["kill"] = len(p)
	p = append(p, bpf.RetConstant{Val: seccompRetKillProcess})
	for _, f := range fixes {
		j := p[f.at].(bpf.JumpIf)
		skip := uint8(labels[f.label] - f.at - 1)
		if f.onTrue {
			j.SkipTrue = skip
		} else {
			j.SkipFalse = skip
		}
		p[f.at] = j
	}
	return p
}
