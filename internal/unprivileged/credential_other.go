//go:build !unix

package unprivileged

import (
	"fmt"
	"runtime"
	"syscall"
)

// asUser fails: this system has no uid to switch to.
func asUser(uid, gid int) (*syscall.SysProcAttr, error) {
	return nil, fmt.Errorf("cannot run as another user on %s", runtime.GOOS)
}
