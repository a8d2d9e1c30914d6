//go:build unix

package eventstore

import (
	"errors"
	"io/fs"
	"syscall"

	"golang.org/x/sys/unix"
)

// access checks that the process may write p.
func access(p, what string) error {
	if err := unix.Access(p, unix.W_OK); err != nil {
		if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.EPERM) {
			return &fs.PathError{Op: "cannot " + what, Path: p, Err: fs.ErrPermission}
		}
	}
	return nil
}
