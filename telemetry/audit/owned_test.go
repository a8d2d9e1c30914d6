//go:build linux

package audit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/quarry-sec/quarry/telemetry"
)

// TestHelperAuditOwner is the other audit daemon of TestOwnedByAnother: it
// registers as the audit daemon, says "ready", and gives the socket back
// when its standard input closes.
func TestHelperAuditOwner(t *testing.T) {
	if os.Getenv("QUARRY_AUDIT_OWNER") == "" {
		t.Skip("only run by TestOwnedByAnother")
	}
	c, err := dial(0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.setStatus(status{Mask: unix.AUDIT_STATUS_PID, PID: uint32(os.Getpid())}); err != nil {
		t.Fatal(err)
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	if err := c.setStatus(status{Mask: unix.AUDIT_STATUS_PID}); err != nil {
		t.Fatal(err)
	}
}

// TestOwnedByAnother: with another audit daemon registered, Start refuses
// with an OwnedError naming it, and leaves it registered.
func TestOwnedByAnother(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: the audit socket needs root")
	}
	probe, err := dial(0)
	if err != nil {
		t.Skipf("skipping: no audit socket here: %v", err)
	}
	st, err := probe.getStatus()
	probe.Close()
	if err != nil {
		t.Skipf("skipping: audit status unavailable: %v", err)
	}
	if st.PID != 0 {
		t.Skipf("skipping: an audit daemon (pid %d) already runs", st.PID)
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestHelperAuditOwner$", "-test.v")
	cmd.Env = append(os.Environ(), "QUARRY_AUDIT_OWNER=1")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("owner: %v", err)
		}
	}()
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && sc.Text() != "ready" {
	}
	go io.Copy(io.Discard, stdout)

	_, err = Start(context.Background(), Options{}, func(telemetry.Event) {})
	var owned *OwnedError
	if !errors.As(err, &owned) || owned.PID != uint32(cmd.Process.Pid) || !strings.Contains(err.Error(), "audit daemon") {
		t.Fatalf("Start = %v, want an OwnedError naming pid %d", err, cmd.Process.Pid)
	}
	c, _ := dial(0)
	defer c.Close()
	if st, err := c.getStatus(); err != nil || st.PID != uint32(cmd.Process.Pid) {
		t.Errorf("after the refusal the audit pid is %d (%v), want the owner's %d", st.PID, err, cmd.Process.Pid)
	}
	if keys, _ := ListRules(); strings.Contains(strings.Join(keys, ","), RuleKey) {
		t.Errorf("rules added though refused: %v", keys)
	}
}
