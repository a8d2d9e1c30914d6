package collect

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/telemetry"
)

func TestUnknownSource(t *testing.T) {
	_, err := Start(context.Background(), Options{Source: "audit"}, func(telemetry.Event) {})
	if err == nil || !strings.Contains(err.Error(), "audit") {
		t.Errorf("err = %v", err)
	}
}

// events collects what a Collector delivers.
type events struct {
	mu  sync.Mutex
	evs []telemetry.Event
}

func (e *events) add(ev telemetry.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.evs = append(e.evs, ev)
}

// find returns the first event of kind (of pid, unless 0) whose last
// argument is marker (or any event when marker is "").
func (e *events) find(kind telemetry.Kind, pid int64, marker string) (telemetry.Event, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range e.evs {
		if ev.Kind == kind && (pid == 0 || ev.PID == pid) && (marker == "" || (len(ev.Args) > 0 && ev.Args[len(ev.Args)-1] == marker)) {
			return ev, true
		}
	}
	return telemetry.Event{}, false
}

func start(t *testing.T, source string) (*events, *Collector) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: live collectors need root")
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &events{}
	c, err := Start(ctx, Options{Source: source, DrainInterval: 20 * time.Millisecond, Host: "h"}, e.add)
	if err != nil {
		cancel()
		t.Skipf("skipping: source %s cannot start here: %v", source, err)
	}
	t.Cleanup(func() {
		cancel()
		if err := c.Wait(); err != nil {
			t.Errorf("Wait: %v", err)
		}
	})
	return e, c
}

func testLineage(t *testing.T, source string, want telemetry.Source) {
	e, c := start(t, source)
	if c.Source() != want {
		t.Fatalf("Source() = %q, want %q (fallback: %v)", c.Source(), want, c.Fallback())
	}
	marker := fmt.Sprintf("quarry-collect-%d-%d", os.Getpid(), time.Now().UnixNano())
	// The grandchild lives long enough for the netlink collector, which
	// reads a new process's command line from /proc, to see it on a busy
	// machine; the events are then waited for, not slept for.
	cmd := exec.Command("/bin/sh", "-c", "/bin/sleep 0.05; /bin/sh -c '/bin/sleep 0.3; :' "+marker+"-child; exit 2", marker)
	_ = cmd.Run()
	pid := int64(cmd.ProcessState.Pid())
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		_, child := e.find(telemetry.KindExec, 0, marker+"-child")
		_, exit := e.find(telemetry.KindExit, pid, "")
		if child && exit {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}

	self, _ := os.Executable()
	sh, _ := filepath.EvalSymlinks("/bin/sh")
	ev, ok := e.find(telemetry.KindExec, pid, marker)
	if !ok {
		t.Fatalf("no exec event for the shell (pid %d)", pid)
	}
	if ev.ParentPath != self {
		t.Errorf("shell's ParentPath = %q, want the test binary %q (seeded from /proc)", ev.ParentPath, self)
	}
	// The tests run as root: the event names uid 0's user, as Sigma's User
	// field expects on Linux.
	if me, err := user.Current(); err == nil && ev.Username != me.Username {
		t.Errorf("shell's Username = %q (uid %d euid %d), want %q", ev.Username, ev.UID, ev.EUID, me.Username)
	}
	child, ok := e.find(telemetry.KindExec, 0, marker+"-child")
	if !ok {
		t.Fatal("no exec event for the grandchild")
	}
	if child.PPID != pid || child.ParentPath != sh || child.ParentCmdline != ev.Cmdline {
		t.Errorf("grandchild: PPID %d ParentPath %q ParentCmdline %q, want %d %q %q", child.PPID, child.ParentPath, child.ParentCmdline, pid, sh, ev.Cmdline)
	}
	ex, ok := e.find(telemetry.KindExit, pid, "")
	if !ok {
		t.Fatal("no exit event for the shell")
	}
	if ex.ExitCode != 2 || ex.Path != sh || ex.Cmdline != ev.Cmdline || ex.ParentPath != self {
		t.Errorf("shell's exit: code %d Path %q Cmdline %q ParentPath %q", ex.ExitCode, ex.Path, ex.Cmdline, ex.ParentPath)
	}
	if st := c.Stats(); st.Source != want || st.Events == 0 || st.Seeded == 0 {
		t.Errorf("Stats = %+v", st)
	}
}

func TestAutoUsesEBPFWithLineage(t *testing.T) { testLineage(t, SourceAuto, telemetry.SourceEBPF) }

func TestForcedCnProcWithLineage(t *testing.T) { testLineage(t, SourceCnProc, telemetry.SourceCnProc) }
