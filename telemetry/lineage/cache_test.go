package lineage

import (
	"testing"
	"time"

	"github.com/quarry-sec/quarry/telemetry"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func exec(pid, ppid int64, start time.Time, path, cmdline string) telemetry.Event {
	ev := telemetry.NewEvent(telemetry.KindExec, telemetry.SourceEBPF)
	ev.PID, ev.PPID, ev.StartTime, ev.Time = pid, ppid, start, start
	ev.Path, ev.Cmdline = path, cmdline
	return ev
}

func exit(pid int64, start, at time.Time) telemetry.Event {
	ev := telemetry.NewEvent(telemetry.KindExit, telemetry.SourceEBPF)
	ev.PID, ev.StartTime, ev.Time = pid, start, at
	return ev
}

type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func TestExitedParentStillNamed(t *testing.T) {
	clk := &clock{now: t0}
	c := New(Options{Now: clk.Now})
	sh := exec(100, 1, t0, "/usr/bin/bash", "bash -c x")
	c.Enrich(&sh)
	// The parent exits before its child's exec is seen.
	shExit := exit(100, t0, t0.Add(time.Second))
	c.Enrich(&shExit)
	if shExit.Path != "/usr/bin/bash" || shExit.Cmdline != "bash -c x" || shExit.PPID != 1 {
		t.Errorf("exit not filled in: %+v", shExit)
	}
	child := exec(101, 100, t0.Add(500*time.Millisecond), "/usr/bin/true", "true")
	c.Enrich(&child)
	if child.ParentPath != "/usr/bin/bash" || child.ParentCmdline != "bash -c x" {
		t.Errorf("parent of child = %q %q", child.ParentPath, child.ParentCmdline)
	}
	// The child's exit names the parent too.
	childExit := exit(101, child.StartTime, t0.Add(2*time.Second))
	c.Enrich(&childExit)
	if childExit.Path != "/usr/bin/true" || childExit.ParentPath != "/usr/bin/bash" || childExit.PPID != 100 {
		t.Errorf("child exit = %+v", childExit)
	}
}

func TestPIDReuseIsANewProcess(t *testing.T) {
	clk := &clock{now: t0.Add(3 * time.Minute)}
	c := New(Options{Now: clk.Now})
	old := exec(200, 1, t0, "/usr/bin/old", "old")
	c.Enrich(&old)
	// pid 200 is reused (its exit was missed): a different start time.
	reused := exec(200, 1, t0.Add(time.Minute), "/usr/bin/new", "new")
	c.Enrich(&reused)
	// A child of the old process started before the reuse.
	oldChild := exec(300, 200, t0.Add(time.Second), "/usr/bin/c1", "c1")
	c.Enrich(&oldChild)
	if oldChild.ParentPath != "/usr/bin/old" {
		t.Errorf("child of the first pid 200 got parent %q", oldChild.ParentPath)
	}
	newChild := exec(301, 200, t0.Add(2*time.Minute), "/usr/bin/c2", "c2")
	c.Enrich(&newChild)
	if newChild.ParentPath != "/usr/bin/new" {
		t.Errorf("child of the second pid 200 got parent %q", newChild.ParentPath)
	}
	// The exit of the old one, identified by start time, is not the new one.
	oldExit := exit(200, t0, t0.Add(3*time.Minute))
	c.Enrich(&oldExit)
	if oldExit.Path != "/usr/bin/old" {
		t.Errorf("exit of the old pid 200 named %q", oldExit.Path)
	}
	newExit := exit(200, t0.Add(time.Minute+5*time.Millisecond), t0.Add(3*time.Minute))
	c.Enrich(&newExit)
	if newExit.Path != "/usr/bin/new" {
		t.Errorf("exit of the new pid 200 (start within tolerance) named %q", newExit.Path)
	}
}

func TestReExecKeepsParentAndReplacesImage(t *testing.T) {
	c := New(Options{})
	parent := exec(10, 1, t0, "/usr/bin/bash", "bash")
	c.Enrich(&parent)
	sh := exec(11, 10, t0.Add(time.Second), "/usr/bin/dash", "sh -c exec sleep 1")
	c.Enrich(&sh)
	// Same pid and start time: exec sleep replaces the image.
	sleep := exec(11, telemetry.Unknown, sh.StartTime, "/usr/bin/sleep", "sleep 1")
	c.Enrich(&sleep)
	if sleep.ParentPath != "/usr/bin/bash" || sleep.PPID != 10 {
		t.Errorf("re-exec parent = %q ppid %d, want bash 10", sleep.ParentPath, sleep.PPID)
	}
	child := exec(12, 11, t0.Add(2*time.Second), "/usr/bin/true", "true")
	c.Enrich(&child)
	if child.ParentPath != "/usr/bin/sleep" || child.ParentCmdline != "sleep 1" {
		t.Errorf("child of re-exec'd process got parent %q %q", child.ParentPath, child.ParentCmdline)
	}
	if c.Len() != 3 {
		t.Errorf("Len = %d, want 3", c.Len())
	}
}

func TestExitedExpireAndBound(t *testing.T) {
	clk := &clock{now: t0}
	c := New(Options{Now: clk.Now, ExitedTTL: time.Minute, MaxEntries: 3})
	p := exec(1000, 1, t0, "/p", "p")
	c.Enrich(&p)
	e := exit(1000, t0, t0)
	c.Enrich(&e)
	clk.now = t0.Add(2 * time.Minute)
	child := exec(1001, 1000, t0.Add(time.Second), "/c", "c")
	c.Enrich(&child)
	if child.ParentPath != "" {
		t.Errorf("expired parent still named: %q", child.ParentPath)
	}
	for pid := int64(2000); pid < 2010; pid++ {
		ev := exec(pid, 1, clk.now, "/x", "x")
		c.Enrich(&ev)
	}
	if c.Len() != 3 {
		t.Errorf("Len = %d, want the bound 3", c.Len())
	}
}

func TestSeedNamesParentsStartedBefore(t *testing.T) {
	c := New(Options{})
	// /proc start times are in 10 ms ticks: earlier than the exact one.
	c.Seed([]telemetry.Event{exec(50, 1, t0.Truncate(10*time.Millisecond), "/usr/sbin/sshd", "sshd: user")})
	child := exec(51, 50, t0.Add(time.Hour), "/usr/bin/id", "id")
	c.Enrich(&child)
	if child.ParentPath != "/usr/sbin/sshd" {
		t.Errorf("seeded parent not found: %q", child.ParentPath)
	}
	ex := exit(50, t0.Add(7*time.Millisecond), t0.Add(2*time.Hour))
	c.Enrich(&ex)
	if ex.Path != "/usr/sbin/sshd" {
		t.Errorf("exit of a seeded process with an exact start time named %q", ex.Path)
	}
}
