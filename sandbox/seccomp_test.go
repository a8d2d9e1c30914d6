//go:build linux

package sandbox

import (
	"encoding/binary"
	"runtime"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// seccompData is a struct seccomp_data for the filter's VM.
func seccompData(arch uint32, nr uintptr, arg0 uint64) []byte {
	b := make([]byte, 64)
	binary.NativeEndian.PutUint32(b[0:], uint32(nr))
	binary.NativeEndian.PutUint32(b[4:], arch)
	binary.NativeEndian.PutUint64(b[16:], arg0)
	return b
}

// The filter denies the listed calls with EPERM, namespace-making clones,
// x32 calls and another architecture's calls, answers clone3 with ENOSYS
// and allows the rest. Run in x/net/bpf's VM, without a kernel. (bpf's VM
// loads big-endian, the kernel native-endian: the data is built so both
// agree on each 32-bit word, by swapping on little-endian machines.)
func TestSeccompProgram(t *testing.T) {
	arch, ok := auditArch[runtime.GOARCH]
	if !ok {
		t.Skipf("no seccomp filter for %s", runtime.GOARCH)
	}
	vm, err := bpf.NewVM(seccompProgram(arch))
	if err != nil {
		t.Fatal(err)
	}
	run := func(a uint32, nr uintptr, arg0 uint64) uint32 {
		d := seccompData(a, nr, arg0)
		// The VM reads words big-endian: present the native words so.
		for i := 0; i+4 <= len(d); i += 4 {
			v := binary.NativeEndian.Uint32(d[i:])
			binary.BigEndian.PutUint32(d[i:], v)
		}
		n, err := vm.Run(d)
		if err != nil {
			t.Fatal(err)
		}
		return uint32(n)
	}
	eperm := uint32(seccompRetErrno | uint32(unix.EPERM))
	for _, c := range []struct {
		name string
		arch uint32
		nr   uintptr
		arg0 uint64
		want uint32
	}{
		{"read", arch, unix.SYS_READ, 0, seccompRetAllow},
		{"execve", arch, unix.SYS_EXECVE, 0, seccompRetAllow},
		{"ptrace", arch, unix.SYS_PTRACE, 0, seccompRetAllow},
		{"mount", arch, unix.SYS_MOUNT, 0, eperm},
		{"kexec_load", arch, unix.SYS_KEXEC_LOAD, 0, eperm},
		{"finit_module", arch, unix.SYS_FINIT_MODULE, 0, eperm},
		{"unshare", arch, unix.SYS_UNSHARE, 0, eperm},
		{"bpf", arch, unix.SYS_BPF, 0, eperm},
		{"clone thread", arch, unix.SYS_CLONE, unix.CLONE_VM | unix.CLONE_THREAD, seccompRetAllow},
		{"clone newuser", arch, unix.SYS_CLONE, unix.CLONE_NEWUSER, eperm},
		{"clone newns", arch, unix.SYS_CLONE, unix.CLONE_NEWNS | 17 /* SIGCHLD */, eperm},
		{"clone3", arch, unix.SYS_CLONE3, 0, uint32(seccompRetErrno | uint32(unix.ENOSYS))},
		{"x32", arch, 0x40000000 + unix.SYS_READ, 0, eperm},
		{"other arch", arch ^ 1, unix.SYS_READ, 0, seccompRetKillProcess},
	} {
		if got := run(c.arch, c.nr, c.arg0); got != c.want {
			t.Errorf("%s: %#x, want %#x", c.name, got, c.want)
		}
	}
	if _, err := seccompFilter(); err != nil {
		t.Fatal(err)
	}
}
