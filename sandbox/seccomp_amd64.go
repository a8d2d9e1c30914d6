//go:build linux

package sandbox

import "golang.org/x/sys/unix"

// archDenied are the denied calls only this architecture has.
var archDenied = []uintptr{unix.SYS_IOPL, unix.SYS_IOPERM, unix.SYS_LOOKUP_DCOOKIE}
