//go:build linux

package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// cgroupParent is the directory under a cgroup hierarchy that holds the
// runs' cgroups.
const cgroupParent = "quarry-sandbox"

// cgroup is the cgroup of one run: a cgroup v2 directory (whose id the eBPF
// collectors record as Event.CgroupID, and whose cgroup.kill ends every
// process of the run), plus cgroup v1 directories for the limits whose
// controllers are bound to cgroup v1 on a hybrid host.
type cgroup struct {
	dir     string // the v2 cgroup
	id      uint64 // its id (the directory's inode)
	v1      []string
	applied []string // the limits applied, as "memory.max=…"
	missing []string // the limits that could not be applied, with why
}

// cgroup2Root returns where the cgroup v2 hierarchy is mounted:
// /sys/fs/cgroup on a unified host, /sys/fs/cgroup/unified on a hybrid one.
func cgroup2Root() (string, error) {
	for _, p := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		var st unix.Statfs_t
		if err := unix.Statfs(p, &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
			return p, nil
		}
	}
	return "", errors.New("no cgroup v2 hierarchy mounted (at /sys/fs/cgroup or /sys/fs/cgroup/unified)")
}

// newCgroup makes the run's cgroups and applies lim where a controller
// allows: in cgroup v2 when it has the controller, else in cgroup v1.
func newCgroup(runID string, lim Limits) (*cgroup, error) {
	root, err := cgroup2Root()
	if err != nil {
		return nil, err
	}
	parent := filepath.Join(root, cgroupParent)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("make cgroup %s: %w", parent, err)
	}
	avail := map[string]bool{}
	if b, err := os.ReadFile(filepath.Join(root, "cgroup.controllers")); err == nil {
		for _, c := range strings.Fields(string(b)) {
			avail[c] = true
		}
	}
	var enable []string
	for _, c := range []string{"memory", "pids", "cpu"} {
		if avail[c] {
			enable = append(enable, "+"+c)
		}
	}
	for _, d := range []string{root, parent} {
		if len(enable) > 0 {
			// Best effort: a controller another manager holds stays off,
			// and the v1 fallback below then applies its limit.
			for _, e := range enable {
				_ = os.WriteFile(filepath.Join(d, "cgroup.subtree_control"), []byte(e), 0)
			}
		}
	}
	dir := filepath.Join(parent, runID)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("make cgroup %s: %w", dir, err)
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		os.Remove(dir)
		return nil, fmt.Errorf("cgroup %s: %w", dir, err)
	}
	cg := &cgroup{dir: dir, id: st.Ino}
	v2 := map[string][2]string{
		"memory": {"memory.max", strconv.FormatInt(lim.MemoryBytes, 10)},
		"pids":   {"pids.max", strconv.Itoa(lim.Pids)},
		"cpu":    {"cpu.max", fmt.Sprintf("%d 100000", int64(lim.CPUs*100000))},
	}
	v1 := map[string][2]string{
		"memory": {"memory.limit_in_bytes", strconv.FormatInt(lim.MemoryBytes, 10)},
		"pids":   {"pids.max", strconv.Itoa(lim.Pids)},
		"cpu":    {"cpu.cfs_quota_us", strconv.FormatInt(int64(lim.CPUs*100000), 10)},
	}
	for _, c := range []string{"memory", "pids", "cpu"} {
		f := v2[c]
		if err := os.WriteFile(filepath.Join(dir, f[0]), []byte(f[1]), 0); err == nil {
			cg.applied = append(cg.applied, f[0]+"="+f[1])
			continue
		}
		d := filepath.Join("/sys/fs/cgroup", c, cgroupParent, runID)
		if err := os.MkdirAll(d, 0o755); err != nil {
			cg.missing = append(cg.missing, c+": no cgroup v2 controller, and cgroup v1: "+err.Error())
			continue
		}
		cg.v1 = append(cg.v1, d)
		if c == "cpu" {
			_ = os.WriteFile(filepath.Join(d, "cpu.cfs_period_us"), []byte("100000"), 0)
		}
		if err := os.WriteFile(filepath.Join(d, v1[c][0]), []byte(v1[c][1]), 0); err != nil {
			cg.missing = append(cg.missing, c+": cgroup v1 "+v1[c][0]+": "+err.Error())
			continue
		}
		cg.applied = append(cg.applied, "v1 "+v1[c][0]+"="+v1[c][1])
	}
	return cg, nil
}

// joinThread moves the calling OS thread into the run's cgroup v1
// directories, so that a process it forks starts in them (cgroup v1 is
// per thread), and returns the function that moves it back where it was
// (else the run's cgroups stay busy until the thread is gone). The caller
// has locked the thread.
func (cg *cgroup) joinThread() (leave func(), err error) {
	tid := strconv.Itoa(unix.Gettid())
	orig := map[string]string{}
	if b, err := os.ReadFile("/proc/thread-self/cgroup"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			parts := strings.SplitN(line, ":", 3)
			if len(parts) == 3 {
				for _, c := range strings.Split(parts[1], ",") {
					orig[c] = parts[2]
				}
			}
		}
	}
	leave = func() {
		for _, d := range cg.v1 {
			c := filepath.Base(filepath.Dir(filepath.Dir(d)))
			_ = os.WriteFile(filepath.Join("/sys/fs/cgroup", c, orig[c], "tasks"), []byte(tid), 0)
		}
	}
	for _, d := range cg.v1 {
		if err := os.WriteFile(filepath.Join(d, "tasks"), []byte(tid), 0); err != nil {
			leave()
			return nil, fmt.Errorf("join cgroup %s: %w", d, err)
		}
	}
	return leave, nil
}

// kill ends every process in the run's cgroup: cgroup.kill where the
// kernel has it (5.14), else SIGKILL to each listed process until none is
// left.
func (cg *cgroup) kill() error {
	if err := os.WriteFile(filepath.Join(cg.dir, "cgroup.kill"), []byte("1"), 0); err == nil {
		return nil
	}
	for range 50 {
		pids, err := cg.procs()
		if err != nil {
			return fmt.Errorf("kill %w", err)
		}
		if len(pids) == 0 {
			return nil
		}
		for _, p := range pids {
			_ = unix.Kill(p, unix.SIGKILL)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("kill cgroup %s: processes left", cg.dir)
}

// procs returns the pids in the run's cgroup.
func (cg *cgroup) procs() ([]int, error) {
	b, err := os.ReadFile(filepath.Join(cg.dir, "cgroup.procs"))
	if err != nil {
		return nil, fmt.Errorf("read cgroup %s: %w", cg.dir, err)
	}
	var out []int
	for _, p := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(p); err == nil {
			out = append(out, n)
		}
	}
	return out, nil
}

// remove kills what is left and removes the run's cgroups (a cgroup is
// removed once empty; the kernel empties it shortly after the kill).
func (cg *cgroup) remove() error {
	_ = cg.kill()
	var errs []error
	for _, d := range append([]string{cg.dir}, cg.v1...) {
		var err error
		for range 100 {
			if err = os.Remove(d); err == nil || errors.Is(err, os.ErrNotExist) {
				err = nil
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}
