package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/extension/osqueryext/osquerytest"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds quarry-extension.ext once per test run.
func binary(tb testing.TB) string {
	tb.Helper()
	if testing.Short() {
		tb.Skip("builds and runs the binary; skipped with -short")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "qext")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "quarry-extension.ext")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return binPath
}

// syncBuffer is a bytes.Buffer safe for the process's writes and our reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// running is the binary running under a fake osqueryd.
type running struct {
	fake       *osquerytest.Fake
	cmd        *exec.Cmd
	stderr     *syncBuffer
	reg        osquerytest.Registration
	client     *osquerytest.Client
	registered time.Duration // process start to registration accepted
	exited     chan error
}

// startBinary starts the extension as osqueryd would, with osqueryd's own
// process_events table in the fake so the rename is exercised.
func startBinary(tb testing.TB, dataDir string, extra ...string) *running {
	tb.Helper()
	bin := binary(tb)
	fake, err := osquerytest.Start("process_events", "processes")
	if err != nil {
		tb.Fatal(err)
	}
	r := &running{fake: fake, stderr: &syncBuffer{}, exited: make(chan error, 1)}
	args := append([]string{"--socket", fake.Socket, "--timeout", "3", "--interval", "1", "--data-dir", dataDir}, extra...)
	r.cmd = exec.Command(bin, args...)
	r.cmd.Stderr = r.stderr
	start := time.Now()
	if err := r.cmd.Start(); err != nil {
		fake.Close()
		tb.Fatal(err)
	}
	go func() { r.exited <- r.cmd.Wait() }()
	tb.Cleanup(func() {
		if r.client != nil {
			r.client.Close()
		}
		if r.cmd.ProcessState == nil {
			_ = r.cmd.Process.Kill()
			<-r.exited
		}
		fake.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r.reg, err = fake.WaitRegistered(ctx)
	if err != nil {
		tb.Fatalf("%v\nstderr:\n%s", err, r.stderr)
	}
	r.registered = time.Since(start)
	r.client, err = fake.Dial(ctx, r.reg.UUID)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// wait waits for the process to exit and returns its exit code.
func (r *running) wait(tb testing.TB) int {
	tb.Helper()
	select {
	case <-r.exited:
		return r.cmd.ProcessState.ExitCode()
	case <-time.After(20 * time.Second):
		tb.Fatalf("extension did not exit\nstderr:\n%s", r.stderr)
		return -1
	}
}

// vmRSS reads a process's resident set size in KiB from /proc.
func vmRSS(pid int) (int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

func TestBinaryServesTablesAndStopsOnOsquerysRequest(t *testing.T) {
	r := startBinary(t, t.TempDir(), "--collect", "off")
	t.Logf("process start to registered: %v", r.registered)
	if r.reg.Info.Name != "quarry" || r.reg.Info.Version != version {
		t.Errorf("registered as %q %q", r.reg.Info.Name, r.reg.Info.Version)
	}
	tbls := r.reg.Registry["table"]
	for _, name := range []string{"attack_techniques", "attack_technique_tactics", "quarry_process_events", "ioa_hits", "ioa_rules"} {
		if _, ok := tbls[name]; !ok {
			t.Errorf("table %s not registered", name)
		}
	}
	if _, ok := tbls["process_events"]; ok {
		t.Error("process_events registered under osquery's own name")
	}
	if len(r.fake.Refused()) != 0 {
		t.Errorf("osqueryd refused %v", r.fake.Refused())
	}
	time.Sleep(500 * time.Millisecond)
	if rss, err := vmRSS(r.cmd.Process.Pid); err == nil {
		t.Logf("VmRSS idle after registration (collector off): %d KiB", rss)
	}
	ctx := context.Background()
	rows, err := r.client.Generate(ctx, "attack_techniques",
		`{"constraints":[{"name":"id","list":[{"op":2,"expr":"T1003.001"}],"affinity":"TEXT"}],"colsUsed":["id","name"]}`)
	if err != nil || len(rows) != 1 || rows[0]["name"] != "LSASS Memory" {
		t.Errorf("T1003.001: %v, %v", rows, err)
	}
	if err := r.client.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	r.client.Close()
	if code := r.wait(t); code != 0 {
		t.Errorf("exit code %d after osquery's shutdown\nstderr:\n%s", code, r.stderr)
	}
}

func TestBinaryStopsOnSIGTERM(t *testing.T) {
	r := startBinary(t, t.TempDir(), "--collect", "off")
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if uuid, err := r.fake.WaitDeregistered(ctx); err != nil || uuid != r.reg.UUID {
		t.Errorf("deregistered %d, %v", uuid, err)
	}
	r.client.Close()
	if code := r.wait(t); code != 0 {
		t.Errorf("exit code %d after SIGTERM\nstderr:\n%s", code, r.stderr)
	}
}

// TestBinaryCollectsWhileServing runs the live collector and the detection
// engine inside the extension: a command run while it serves shows up in
// quarry_process_events and ioa_hits, and what is pending is flushed when
// osquery shuts the extension down.
func TestBinaryCollectsWhileServing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("live collection needs root (eBPF or the netlink process connector)")
	}
	dataDir := t.TempDir()
	r := startBinary(t, dataDir)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(r.stderr.String(), "collecting process events") {
		if strings.Contains(r.stderr.String(), "service not started") || time.Now().After(deadline) {
			t.Skipf("no live collector on this host:\n%s", r.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if rss, err := vmRSS(r.cmd.Process.Pid); err == nil {
		t.Logf("VmRSS after registration, collector and detection running: %d KiB", rss)
	}
	// Harmless, and matches the builtin high-severity rule "base64 decoded
	// into a shell" (T1027, T1059.004).
	const marker = "ZWNobyBxdWFycnk="
	for range 3 {
		if out, err := exec.Command("sh", "-c", "echo "+marker+" | base64 -d | sh").CombinedOutput(); err != nil {
			t.Fatalf("base64 | sh: %v %s", err, out)
		}
	}
	ctx := context.Background()
	find := func(table, ctxJSON string) []map[string]string {
		rows, err := r.client.Generate(ctx, table, ctxJSON)
		if err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		var out []map[string]string
		for _, row := range rows {
			if strings.Contains(row["cmdline"], marker+" | base64 -d | sh") {
				out = append(out, row)
			}
		}
		return out
	}
	var events, hits []map[string]string
	since := strconv.FormatInt(time.Now().Add(-time.Minute).Unix(), 10)
	for wait := time.Now().Add(10 * time.Second); time.Now().Before(wait); time.Sleep(200 * time.Millisecond) {
		events = find("quarry_process_events", `{"constraints":[{"name":"time","list":[{"op":32,"expr":"`+since+`"}],"affinity":"BIGINT"}],"colsUsed":["pid","path","cmdline","source","time"]}`)
		hits = find("ioa_hits", `{"constraints":[],"colsUsed":["rule_title","technique_id","cmdline"]}`)
		if len(events) >= 3 && len(hits) >= 3 {
			break
		}
	}
	if len(events) < 3 {
		t.Errorf("quarry_process_events has %d of the 3 runs", len(events))
	}
	if len(hits) < 3 {
		t.Errorf("ioa_hits has %d rows for the 3 runs, want one per run and technique", len(hits))
	} else {
		t.Logf("hit: %v", hits[0])
	}

	// More, just before shutdown: they must be flushed on the way out.
	for range 5 {
		if err := exec.Command("true").Run(); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.client.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	r.client.Close()
	if code := r.wait(t); code != 0 {
		t.Errorf("exit code %d\nstderr:\n%s", code, r.stderr)
	}
	if !strings.Contains(r.stderr.String(), "collector stopped") {
		t.Errorf("collector not stopped cleanly:\n%s", r.stderr)
	}
	st, err := eventstore.Open(eventstore.Path(dataDir))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n, err := st.Count(ctx); err != nil || n < int64(len(events)+5) {
		t.Errorf("store has %d events after shutdown, %v", n, err)
	}
}

// BenchmarkBinaryStartToRegistered is the extension binary's start, as
// osqueryd autoloads it (collector off), until osqueryd has accepted the
// registration: process start, ATT&CK load, event store, rules, catalog,
// dial, register. It also reports the idle resident set after registration.
func BenchmarkBinaryStartToRegistered(b *testing.B) {
	binary(b)
	dataDir := b.TempDir()
	var total time.Duration
	rssSum := 0
	for i := 0; i < b.N; i++ {
		r := startBinary(b, dataDir, "--collect", "off")
		total += r.registered
		time.Sleep(200 * time.Millisecond)
		if rss, err := vmRSS(r.cmd.Process.Pid); err == nil {
			rssSum += rss
		}
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		r.client.Close()
		r.wait(b)
		r.fake.Close()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-to-registered")
	b.ReportMetric(float64(rssSum)/float64(b.N)/1024, "MiB-RSS-idle")
}
