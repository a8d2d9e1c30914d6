//go:build linux

package cnproc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/quarry-sec/quarry/telemetry"
)

// ticksPerSecond is USER_HZ, the unit of /proc/<pid>/stat's start time; it
// is 100 on every Linux architecture.
const ticksPerSecond = 100

// procReader reads /proc/<pid> files into a reused buffer.
type procReader struct {
	root string // "/proc"
	buf  []byte
	path []byte
}

func newProcReader() *procReader {
	return &procReader{root: "/proc", buf: make([]byte, 64<<10)}
}

// read returns the content of /proc/<pid>/<name>, valid until the next read.
func (r *procReader) read(pid int64, name string) ([]byte, error) {
	fd, err := unix.Open(r.pidPath(pid, name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	n := 0
	for n < len(r.buf) {
		m, err := unix.Read(fd, r.buf[n:])
		if err != nil {
			return nil, err
		}
		if m == 0 {
			break
		}
		n += m
	}
	return r.buf[:n], nil
}

// readlink returns the target of /proc/<pid>/<name>.
func (r *procReader) readlink(pid int64, name string) (string, error) {
	n, err := unix.Readlink(r.pidPath(pid, name), r.buf)
	if err != nil {
		return "", err
	}
	return string(r.buf[:n]), nil
}

func (r *procReader) pidPath(pid int64, name string) string {
	r.path = append(r.path[:0], r.root...)
	r.path = append(r.path, '/')
	r.path = strconv.AppendInt(r.path, pid, 10)
	r.path = append(r.path, '/')
	r.path = append(r.path, name...)
	return string(r.path)
}

// fill reads /proc/<pid> into ev: cmdline and exe first, as a short-lived
// process may be gone by the next read, then status, cwd, loginuid and
// stat. It sets ev.Partial when a read failed and returns the first error.
func (r *procReader) fill(ev *telemetry.Event, pid int64, bootWall int64) error {
	var errs []error
	note := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if b, err := r.read(pid, "cmdline"); err != nil {
		note(err)
	} else if len(b) == 0 {
		note(errors.New("empty cmdline"))
	} else {
		ev.Args = strings.Split(string(bytes.TrimSuffix(b, []byte{0})), "\x00")
		ev.Cmdline = strings.Join(ev.Args, " ")
	}
	exe, err := r.readlink(pid, "exe")
	note(err)
	ev.Path = strings.TrimSuffix(exe, " (deleted)")

	if b, err := r.read(pid, "status"); err != nil {
		note(err)
	} else {
		parseStatus(b, ev)
	}
	cwd, err := r.readlink(pid, "cwd")
	note(err)
	ev.Cwd = cwd
	if b, err := r.read(pid, "loginuid"); err == nil {
		if v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32); err == nil && v != 1<<32-1 {
			ev.AUID = int64(v)
		}
	}
	if b, err := r.read(pid, "stat"); err != nil {
		note(err)
	} else if ticks, ok := statStartTicks(b); ok {
		ns := int64(ticks) * (int64(time.Second) / ticksPerSecond)
		ev.StartTime = time.Unix(0, bootWall+ns).UTC()
	}
	if len(errs) > 0 {
		ev.Partial = true
		return fmt.Errorf("cnproc: reading /proc/%d: %w", pid, errs[0])
	}
	return nil
}

// parseStatus takes Name, PPid, Uid and Gid from /proc/<pid>/status.
func parseStatus(b []byte, ev *telemetry.Event) {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		key, val, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		f := strings.Fields(string(val))
		switch string(key) {
		case "Name":
			ev.Comm = strings.TrimSpace(string(val))
		case "PPid":
			if len(f) == 1 {
				ev.PPID, _ = strconv.ParseInt(f[0], 10, 64)
			}
		case "Uid":
			if len(f) >= 2 {
				ev.UID, _ = strconv.ParseInt(f[0], 10, 64)
				ev.EUID, _ = strconv.ParseInt(f[1], 10, 64)
			}
		case "Gid":
			if len(f) >= 2 {
				ev.GID, _ = strconv.ParseInt(f[0], 10, 64)
				ev.EGID, _ = strconv.ParseInt(f[1], 10, 64)
			}
		}
	}
}

// statStartTicks returns field 22 of /proc/<pid>/stat: the start time in
// clock ticks since boot. The fields are counted after the command name,
// which is in parentheses and may itself hold spaces and parentheses.
func statStartTicks(b []byte) (uint64, bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	const startField = 22 - 3 // f[0] is field 3 (state)
	if len(f) <= startField {
		return 0, false
	}
	v, err := strconv.ParseUint(f[startField], 10, 64)
	return v, err == nil
}

// ReadProcess reads a running process from /proc into an exec event
// (Source cnproc, Time now), Partial when some of it could not be read.
// It is how lineage learns of processes started before Quarry.
func ReadProcess(pid int64) (telemetry.Event, error) {
	clk, err := newClocks()
	if err != nil {
		return telemetry.Event{}, err
	}
	return readProcess(newProcReader(), pid, clk)
}

func readProcess(r *procReader, pid int64, clk clocks) (telemetry.Event, error) {
	ev := telemetry.NewEvent(telemetry.KindExec, telemetry.SourceCnProc)
	ev.Time = time.Now().UTC()
	ev.PID = pid
	err := r.fill(&ev, pid, clk.bootWall)
	return ev, err
}

// Processes reads every process now in /proc (kernel threads, which have
// no command line, are left out). Processes that vanish while being read
// are skipped.
func Processes() ([]telemetry.Event, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("cnproc: listing /proc: %w", err)
	}
	clk, err := newClocks()
	if err != nil {
		return nil, err
	}
	r := newProcReader()
	var evs []telemetry.Event
	for _, e := range entries {
		pid, err := strconv.ParseInt(e.Name(), 10, 64)
		if err != nil {
			continue
		}
		ev, err := readProcess(r, pid, clk)
		if err != nil && ev.Path == "" && ev.Cmdline == "" {
			continue // gone, or a kernel thread
		}
		evs = append(evs, ev)
	}
	return evs, nil
}
