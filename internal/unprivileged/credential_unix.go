//go:build unix

package unprivileged

import "syscall"

// asUser is the process attribute that runs a child as uid and gid, with
// no supplementary groups.
func asUser(uid, gid int) (*syscall.SysProcAttr, error) {
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}, nil
}
