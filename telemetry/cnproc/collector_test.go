//go:build linux

package cnproc

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/telemetry"
)

type sink struct {
	mu    sync.Mutex
	byPID map[int64][]telemetry.Event
}

func (s *sink) add(ev telemetry.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byPID[ev.PID] = append(s.byPID[ev.PID], ev)
}

func (s *sink) find(pid int64, kind telemetry.Kind) (telemetry.Event, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ev := range s.byPID[pid] {
		if ev.Kind == kind {
			return ev, true
		}
	}
	return telemetry.Event{}, false
}

func resolved(t *testing.T, p string) string {
	t.Helper()
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestCapturesShortLivedChildren(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: the process connector needs CAP_NET_ADMIN (root)")
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &sink{byPID: map[int64][]telemetry.Event{}}
	c, err := Start(ctx, Options{Host: "test-host"}, s.add)
	if err != nil {
		cancel()
		t.Skipf("skipping: the process connector is unavailable: %v", err)
	}
	defer func() {
		cancel()
		if err := c.Wait(); err != nil {
			t.Errorf("Wait: %v", err)
		}
	}()

	dir := t.TempDir()
	marker := fmt.Sprintf("quarry-cnproc-%d-%d", os.Getpid(), time.Now().UnixNano())
	want := map[int64][]string{}
	var pids []int64
	runChild := func(args ...string) {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = dir
		_ = cmd.Run()
		pid := int64(cmd.ProcessState.Pid())
		pids, want[pid] = append(pids, pid), args
	}
	for i := 0; i < 200; i++ {
		runChild("/bin/true", fmt.Sprintf("%s-true-%d", marker, i))
	}
	for i := 0; i < 10; i++ {
		runChild("/bin/sh", "-c", "sleep 0.05; exit 4", fmt.Sprintf("%s-sleep-%d", marker, i))
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for time.Now().Before(deadline) {
			if _, ok := s.find(pid, telemetry.KindExit); ok {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	truePath, shPath, cwd, partial := resolved(t, "/bin/true"), resolved(t, "/bin/sh"), resolved(t, dir), 0
	for _, pid := range pids {
		ev, ok := s.find(pid, telemetry.KindExec)
		if !ok {
			t.Errorf("pid %d (%q): no exec event", pid, want[pid])
			continue
		}
		sleeper := want[pid][0] == "/bin/sh"
		if ev.Partial {
			partial++
			if sleeper {
				t.Errorf("pid %d lived 50 ms yet is Partial: %+v", pid, ev)
			}
		}
		if ev.PPID != int64(os.Getpid()) {
			t.Errorf("pid %d: PPID %d, want %d", pid, ev.PPID, os.Getpid())
		}
		wantPath, wantCode := truePath, int64(0)
		if sleeper {
			wantPath, wantCode = shPath, 4
		}
		if sleeper || !ev.Partial {
			if !slices.Equal(ev.Args, want[pid]) || ev.Path != wantPath || ev.Cwd != cwd {
				t.Errorf("pid %d: Args %q Path %q Cwd %q, want %q %q %q", pid, ev.Args, ev.Path, ev.Cwd, want[pid], wantPath, cwd)
			}
		}
		if d := time.Since(ev.StartTime); d < 0 || d > time.Minute {
			t.Errorf("pid %d: StartTime %v", pid, ev.StartTime)
		}
		ex, ok := s.find(pid, telemetry.KindExit)
		if !ok {
			t.Errorf("pid %d: no exit event", pid)
			continue
		}
		if ex.ExitCode != wantCode || ex.PPID != int64(os.Getpid()) || !ex.StartTime.Equal(ev.StartTime) {
			t.Errorf("pid %d: exit code %d ppid %d start %v (exec %v)", pid, ex.ExitCode, ex.PPID, ex.StartTime, ev.StartTime)
		}
	}
	t.Logf("%d of %d execs Partial; stats %+v", partial, len(pids), c.Stats())
}

func TestReadProcessSelf(t *testing.T) {
	ev, err := ReadProcess(int64(os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	if ev.Path != exe || ev.PPID != int64(os.Getppid()) || ev.UID != int64(os.Getuid()) || len(ev.Args) == 0 || ev.Partial {
		t.Errorf("self: %+v", ev)
	}
	if d := time.Since(ev.StartTime); d < 0 || d > time.Hour {
		t.Errorf("StartTime %v", ev.StartTime)
	}
	if _, err := ReadProcess(1 << 30); err == nil {
		t.Error("a missing pid read without error")
	}
	procs, err := Processes()
	if err != nil || len(procs) < 2 {
		t.Errorf("Processes: %d, %v", len(procs), err)
	}
}
