package host

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"sync"
	"time"
)

// Users names this machine's user ids from a passwd file (/etc/passwd by
// default), caching what it read; an id the file lacks is looked up again
// once the file changes. Safe for concurrent use.
type Users struct {
	path string

	mu      sync.Mutex
	names   map[int64]string
	modTime time.Time
	size    int64
	checked time.Time
}

// NewUsers returns a resolver reading path ("" for /etc/passwd).
func NewUsers(path string) *Users {
	if path == "" {
		path = "/etc/passwd"
	}
	return &Users{path: path}
}

// recheck is how often a lookup that misses may look at the file again.
const recheck = 5 * time.Second

// Name returns the user name of uid, or "" when uid is negative (unknown)
// or not in the file.
func (u *Users) Name(uid int64) string {
	if uid < 0 {
		return ""
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if name, ok := u.names[uid]; ok {
		return name
	}
	if u.names != nil && time.Since(u.checked) < recheck {
		return ""
	}
	u.load()
	return u.names[uid]
}

// load reads the file again when it changed since the last read.
func (u *Users) load() {
	first := u.names == nil
	if first {
		u.names = map[int64]string{} // an unreadable file names no one
	}
	u.checked = time.Now()
	fi, err := os.Stat(u.path)
	if err != nil || !first && fi.ModTime().Equal(u.modTime) && fi.Size() == u.size {
		return
	}
	if data, err := os.ReadFile(u.path); err == nil {
		u.names, u.modTime, u.size = parsePasswd(data), fi.ModTime(), fi.Size()
	}
}

// parsePasswd maps the uids of a passwd file to their names (the first
// name of a uid listed twice); malformed lines are skipped.
func parsePasswd(data []byte) map[int64]string {
	names := map[int64]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := bytes.SplitN(sc.Bytes(), []byte{':'}, 4)
		if len(f) < 4 || len(f[0]) == 0 || f[0][0] == '#' {
			continue
		}
		uid, err := strconv.ParseInt(string(f[2]), 10, 64)
		if err != nil || uid < 0 {
			continue
		}
		if _, dup := names[uid]; !dup {
			names[uid] = string(f[0])
		}
	}
	return names
}
