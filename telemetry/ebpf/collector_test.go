//go:build linux

package ebpf

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/telemetry"
)

// sink keeps every event by pid.
type sink struct {
	mu    sync.Mutex
	byPID map[int64][]telemetry.Event
}

func (s *sink) add(ev telemetry.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byPID[ev.PID] = append(s.byPID[ev.PID], ev)
}

// find returns pid's first event of kind accepted by ok.
func (s *sink) find(pid int64, kind telemetry.Kind, ok func(telemetry.Event) bool) (telemetry.Event, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ev := range s.byPID[pid] {
		if ev.Kind == kind && (ok == nil || ok(ev)) {
			return ev, true
		}
	}
	return telemetry.Event{}, false
}

// startCollector starts a collector or skips the test with the reason.
func startCollector(t *testing.T) (*sink, *Collector) {
	t.Helper()
	return startWith(t, Options{DrainInterval: 20 * time.Millisecond, Host: "test-host"})
}

func startWith(t *testing.T, opts Options) (*sink, *Collector) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: loading BPF programs needs root")
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &sink{byPID: map[int64][]telemetry.Event{}}
	c, err := Start(ctx, opts, s.add)
	if err != nil {
		cancel()
		t.Skipf("skipping: BPF cannot load here: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := c.Wait(); err != nil {
			t.Errorf("Wait: %v", err)
		}
	})
	return s, c
}

// run runs a child in dir and returns its pid.
func run(t *testing.T, dir string, name string, args ...string) int64 {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	_ = cmd.Run() // a non-zero exit is expected of some
	if cmd.ProcessState == nil {
		t.Fatalf("%s did not run", name)
	}
	return int64(cmd.ProcessState.Pid())
}

func resolved(t *testing.T, p string) string {
	t.Helper()
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// waitFor polls until every pid has an exit event or the time is up.
func waitFor(s *sink, pids []int64, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		missing := false
		for _, pid := range pids {
			if _, ok := s.find(pid, telemetry.KindExit, nil); !ok {
				missing = true
				break
			}
		}
		if !missing {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCapturesShortLivedChildren(t *testing.T) {
	s, c := startCollector(t)
	dir := t.TempDir()
	marker := fmt.Sprintf("quarry-ebpf-%d-%d", os.Getpid(), time.Now().UnixNano())
	const trues, sleepers = 200, 10

	var pids []int64
	want := map[int64][]string{}
	for i := 0; i < trues; i++ {
		m := fmt.Sprintf("%s-true-%d", marker, i)
		pid := run(t, dir, "/bin/true", m)
		pids, want[pid] = append(pids, pid), []string{"/bin/true", m}
	}
	for i := 0; i < sleepers; i++ {
		m := fmt.Sprintf("%s-sleep-%d", marker, i)
		pid := run(t, dir, "/bin/sh", "-c", "sleep 0.05; exit 4", m)
		pids, want[pid] = append(pids, pid), []string{"/bin/sh", "-c", "sleep 0.05; exit 4", m}
	}
	waitFor(s, pids, 5*time.Second)

	truePath, shPath, cwd := resolved(t, "/bin/true"), resolved(t, "/bin/sh"), resolved(t, dir)
	caught := 0
	for _, pid := range pids {
		ev, ok := s.find(pid, telemetry.KindExec, nil)
		if !ok {
			t.Errorf("pid %d (%q): no exec event", pid, want[pid])
			continue
		}
		caught++
		wantPath, wantCode := truePath, int64(0)
		if want[pid][0] == "/bin/sh" {
			wantPath, wantCode = shPath, 4
		}
		if !slices.Equal(ev.Args, want[pid]) || ev.Cmdline != strings.Join(want[pid], " ") {
			t.Errorf("pid %d: Args %q Cmdline %q, want %q", pid, ev.Args, ev.Cmdline, want[pid])
		}
		if ev.Path != wantPath || ev.Cwd != cwd || ev.PPID != int64(os.Getpid()) {
			t.Errorf("pid %d: Path %q Cwd %q PPID %d, want %q %q %d", pid, ev.Path, ev.Cwd, ev.PPID, wantPath, cwd, os.Getpid())
		}
		if ev.Source != telemetry.SourceEBPF || ev.Host != "test-host" || ev.UID != int64(os.Getuid()) ||
			ev.EUID != int64(os.Geteuid()) || ev.GID != int64(os.Getgid()) || ev.CgroupID == 0 {
			t.Errorf("pid %d: ids %+v", pid, ev)
		}
		if d := time.Since(ev.StartTime); d < 0 || d > time.Minute || ev.Time.Before(ev.StartTime) {
			t.Errorf("pid %d: StartTime %v Time %v", pid, ev.StartTime, ev.Time)
		}
		ex, ok := s.find(pid, telemetry.KindExit, nil)
		if !ok {
			t.Errorf("pid %d: no exit event", pid)
			continue
		}
		if ex.ExitCode != wantCode || ex.ExitSignal != 0 || !ex.StartTime.Equal(ev.StartTime) || ex.PPID != int64(os.Getpid()) {
			t.Errorf("pid %d: exit code %d signal %d start %v (exec %v) ppid %d", pid, ex.ExitCode, ex.ExitSignal, ex.StartTime, ev.StartTime, ex.PPID)
		}
	}
	t.Logf("caught %d of %d; stats %+v", caught, len(pids), c.Stats())
	if st := c.Stats(); st.Drops != 0 || st.Malformed != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestSignalDeathAndMountCrossingCwd(t *testing.T) {
	s, _ := startCollector(t)
	dir, err := os.MkdirTemp("/dev/shm", "quarry-cwd-")
	if err != nil {
		t.Skipf("skipping: no /dev/shm: %v", err)
	}
	defer os.RemoveAll(dir)
	pid := run(t, dir, "/bin/sh", "-c", "kill -9 $$")
	waitFor(s, []int64{pid}, 3*time.Second)
	ev, ok := s.find(pid, telemetry.KindExec, nil)
	if !ok {
		t.Fatal("no exec event")
	}
	if want := resolved(t, dir); ev.Cwd != want {
		t.Errorf("Cwd %q, want %q (a tmpfs mounted below /dev)", ev.Cwd, want)
	}
	ex, ok := s.find(pid, telemetry.KindExit, nil)
	if !ok {
		t.Fatal("no exit event")
	}
	if ex.ExitSignal != 9 || ex.ExitCode != 128+9 {
		t.Errorf("exit code %d signal %d, want 137 9", ex.ExitCode, ex.ExitSignal)
	}
}

func TestLongArgv(t *testing.T) {
	s, _ := startCollector(t)
	long := strings.Repeat("x", 4000)
	pid := run(t, "/", "/bin/true", long, long)
	huge := strings.Repeat("y", 10000)
	pidHuge := run(t, "/", "/bin/true", huge)
	waitFor(s, []int64{pid, pidHuge}, 3*time.Second)
	ev, ok := s.find(pid, telemetry.KindExec, nil)
	if !ok || !slices.Equal(ev.Args, []string{"/bin/true", long, long}) {
		t.Errorf("8 KiB argv not kept whole: %d args", len(ev.Args))
	}
	ev, ok = s.find(pidHuge, telemetry.KindExec, nil)
	if !ok || len(ev.Args) != 2 || !strings.HasPrefix(huge, ev.Args[1]) || ev.Field("args_truncated") != "1" {
		t.Errorf("over-long argv: ok %v, %d args, flag %q", ok, len(ev.Args), ev.Field("args_truncated"))
	}
}

func TestRawTracepointFallback(t *testing.T) {
	s, c := startWith(t, Options{rawOnly: true, RingSize: 1 << 20})
	if got := c.Stats().Attach; got != AttachRawTracepoint {
		t.Fatalf("Attach = %q", got)
	}
	dir := t.TempDir()
	pid := run(t, dir, "/bin/sh", "-c", "exit 5", "raw-marker")
	waitFor(s, []int64{pid}, 3*time.Second)
	ev, ok := s.find(pid, telemetry.KindExec, nil)
	if !ok || !slices.Equal(ev.Args, []string{"/bin/sh", "-c", "exit 5", "raw-marker"}) ||
		ev.Path != resolved(t, "/bin/sh") || ev.Cwd != resolved(t, dir) {
		t.Errorf("exec via raw_tracepoint: %v %+v", ok, ev)
	}
	if ex, ok := s.find(pid, telemetry.KindExit, nil); !ok || ex.ExitCode != 5 {
		t.Errorf("exit via raw_tracepoint: %v %+v", ok, ex)
	}
}
