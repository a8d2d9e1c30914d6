package detections

import (
	"errors"
	"syscall"
)

// fileStamp is what stat says of a rule file: a file written since has
// another change time (and usually size and modification time); one
// replaced by a rename has another inode.
type fileStamp struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64 // ns since the epoch
}

// statRuleFile stats path (following links); false when it cannot.
func statRuleFile(path string) (fileStamp, bool) {
	var st syscall.Stat_t
	err := syscall.Stat(path, &st)
	for errors.Is(err, syscall.EINTR) {
		err = syscall.Stat(path, &st)
	}
	if err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return fileStamp{}, false
	}
	return fileStamp{
		dev: uint64(st.Dev), ino: uint64(st.Ino), size: st.Size,
		mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano(),
	}, true
}
