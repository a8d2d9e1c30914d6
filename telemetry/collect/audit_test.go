//go:build linux

package collect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/audit"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

// helperEnv, when set ("ADDR|DIR"), makes the test binary the audited
// process: it connects to ADDR, creates DIR/a, renames it to DIR/b,
// removes DIR/b, then waits for its standard input to close. The audit
// fallback leaves the collector's own pid out, so the activity must come
// from another process.
const helperEnv = "QUARRY_COLLECT_AUDIT_HELPER"

func TestMain(m *testing.M) {
	if spec := os.Getenv(helperEnv); spec != "" {
		os.Exit(auditHelper(spec))
	}
	os.Exit(m.Run())
}

func auditHelper(spec string) int {
	addr, dir, _ := strings.Cut(spec, "|")
	conn, err := net.Dial("tcp4", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	conn.Close()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if err := os.WriteFile(a, []byte("x"), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := os.Rename(a, b); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := os.Remove(b); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// findEvent returns the first activity event of pid in category whose
// fields include want.
func (e *events) findActivity(pid int64, category string, want map[string]string) (telemetry.Event, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
next:
	for _, ev := range e.evs {
		if ev.Kind != telemetry.KindOther || ev.PID != pid || ev.Category != category {
			continue
		}
		for k, v := range want {
			if ev.Field(k) != v {
				continue next
			}
		}
		return ev, true
	}
	return telemetry.Event{}, false
}

func auditKeys(t *testing.T) int {
	t.Helper()
	keys, err := audit.ListRules()
	if err != nil {
		t.Fatalf("listing audit rules: %v", err)
	}
	n := 0
	for _, k := range keys {
		if k == audit.RuleKey {
			n++
		}
	}
	return n
}

// TestForcedCnProcWithAuditActivity runs the process connector with the
// audit fallback forced, makes another process connect, create, rename and
// remove a file, waits for each event with the process's pid, stores them
// to see that they share the process_key of its exec event, and checks that
// stopping removed the rules.
func TestForcedCnProcWithAuditActivity(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: the audit fallback needs root")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := &events{}
	c, err := Start(ctx, Options{Source: SourceCnProc, Activity: ActivityAudit, Host: "h"}, e.add)
	var owned *audit.OwnedError
	if errors.As(err, &owned) {
		t.Skipf("skipping: %v", err)
	}
	if err != nil {
		cancel()
		t.Skipf("skipping: the process connector or the audit socket is unavailable here: %v", err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := c.Wait(); err != nil {
				t.Errorf("Wait: %v", err)
			}
		}
	}
	defer stop() // a failed check must not leave the rules behind
	st := c.Stats()
	if st.SourceName() != "cnproc+audit" || len(st.AuditCaptures) != len(audit.Captures) || st.Audit.Rules == 0 {
		t.Errorf("Stats = %+v", st)
	}
	for _, nc := range st.NotCaptured {
		if name, _, _ := strings.Cut(nc, ":"); name == "network" || name == "file" {
			t.Errorf("not captured: %s", nc)
		}
	}
	if n := auditKeys(t); n != st.Audit.Rules {
		t.Errorf("%d rules keyed %s in the kernel, want the %d added", n, audit.RuleKey, st.Audit.Rules)
	}

	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	}()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	dir := t.TempDir()
	self, _ := os.Executable()
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+ln.Addr().String()+"|"+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := int64(cmd.Process.Pid)
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	wants := []struct {
		category string
		fields   map[string]string
	}{
		{"network_connection", map[string]string{"Action": "connect", "DestinationIp": "127.0.0.1", "DestinationPort": port}},
		{"file_event", map[string]string{"Action": "create", "TargetFilename": a}},
		{"file_rename", map[string]string{"SourceFilename": a, "TargetFilename": b}},
		{"file_delete", map[string]string{"TargetFilename": b}},
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		_, exec := e.find(telemetry.KindExec, pid, "")
		all := exec
		for _, w := range wants {
			_, ok := e.findActivity(pid, w.category, w.fields)
			all = all && ok
		}
		if all {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Errorf("helper: %v", err)
	}

	execEv, ok := e.find(telemetry.KindExec, pid, "")
	if !ok {
		t.Fatalf("no exec event for the helper (pid %d)", pid)
	}
	batch := []telemetry.Event{execEv}
	for _, w := range wants {
		ev, ok := e.findActivity(pid, w.category, w.fields)
		if !ok {
			t.Errorf("pid %d: no %s event with %v", pid, w.category, w.fields)
			continue
		}
		if ev.Source != telemetry.SourceAuditd || ev.Host != "h" || ev.Field("key") != audit.RuleKey || ev.Path != self {
			t.Errorf("%s event: Source %q Host %q key %q Path %q, want %q", w.category, ev.Source, ev.Host, ev.Field("key"), ev.Path, self)
		}
		batch = append(batch, ev)
	}
	if t.Failed() {
		return
	}

	// Stored, each activity event belongs to the helper's process.
	store, err := eventstore.Open(filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := store.StoreBatch(ctx, batch, nil); err != nil {
		t.Fatal(err)
	}
	if batch[0].ProcessKey == "" {
		t.Fatal("the exec event got no process_key")
	}
	for _, ev := range batch[1:] {
		if ev.ProcessKey != batch[0].ProcessKey {
			t.Errorf("%s event: process_key %q, want the helper's %q", ev.Category, ev.ProcessKey, batch[0].ProcessKey)
		}
	}

	stop()
	if n := auditKeys(t); n != 0 {
		t.Errorf("%d rules keyed %s left after stop", n, audit.RuleKey)
	}
}

// TestAuditOwnedIsReported: when another audit daemon holds the socket
// (here an audit collector started first), auto mode runs without the
// fallback and says why in NotCaptured.
func TestAuditOwnedIsReported(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: the audit fallback needs root")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	owner, err := audit.Start(ctx, audit.Options{Captures: []string{audit.CaptureDriverLoad}}, func(telemetry.Event) {})
	if err != nil {
		t.Skipf("skipping: the audit socket is unavailable here: %v", err)
	}
	defer func() {
		cancel()
		owner.Wait()
	}()
	e := &events{}
	cctx, ccancel := context.WithCancel(ctx)
	c, err := Start(cctx, Options{Source: SourceCnProc, Host: "h"}, e.add)
	if err != nil {
		ccancel()
		t.Skipf("skipping: the process connector is unavailable here: %v", err)
	}
	defer func() {
		ccancel()
		c.Wait()
	}()
	var owned *audit.OwnedError
	if !errors.As(c.AuditError(), &owned) || owned.PID != uint32(os.Getpid()) {
		t.Fatalf("AuditError = %v, want an OwnedError naming pid %d", c.AuditError(), os.Getpid())
	}
	st := c.Stats()
	if st.SourceName() != "cnproc" || len(st.AuditCaptures) != 0 {
		t.Errorf("Stats = %+v", st)
	}
	found := false
	for _, nc := range st.NotCaptured {
		if strings.HasPrefix(nc, "network:") && strings.Contains(nc, "audit fallback: ") && strings.Contains(nc, "audit daemon") {
			found = true
		}
	}
	if !found {
		t.Errorf("NotCaptured does not say why the audit fallback is off: %q", st.NotCaptured)
	}
	if _, err := Start(ctx, Options{Source: SourceCnProc, Activity: ActivityAudit}, e.add); !errors.As(err, &owned) {
		t.Errorf("forced audit while owned: %v, want an OwnedError", err)
	}
}
