//go:build linux

package ebpf

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/sys/unix"

	"github.com/quarry-sec/quarry/telemetry"
)

// waitEvent polls, for up to a second, for pid's first activity event of
// category whose fields include want.
func waitEvent(t *testing.T, s *sink, pid int64, category string, want map[string]string) (telemetry.Event, bool) {
	t.Helper()
	match := func(ev telemetry.Event) bool {
		if ev.Category != category {
			return false
		}
		for k, v := range want {
			if ev.Field(k) != v {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(time.Second)
	for {
		if ev, ok := s.find(pid, telemetry.KindOther, match); ok {
			return ev, true
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	var seen []string
	s.mu.Lock()
	for _, ev := range s.byPID[pid] {
		if ev.Category == category {
			seen = append(seen, fmt.Sprint(ev.Fields.List()))
		}
	}
	s.mu.Unlock()
	t.Errorf("pid %d: no %s event with %v within 1 s; %s events seen: %v", pid, category, want, category, seen)
	return telemetry.Event{}, false
}

// dnsResponder answers every A query on conn with 10.1.2.3.
func dnsResponder(conn net.PacketConn) {
	buf := make([]byte, 1500)
	for {
		n, addr, err := conn.ReadFrom(buf)
		if err != nil {
			return
		}
		var p dnsmessage.Parser
		h, err := p.Start(buf[:n])
		if err != nil {
			continue
		}
		q, err := p.Question()
		if err != nil {
			continue
		}
		b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true})
		b.StartQuestions()
		b.Question(q)
		b.StartAnswers()
		b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 60},
			dnsmessage.AResource{A: [4]byte{10, 1, 2, 3}})
		msg, _ := b.Finish()
		conn.WriteTo(msg, addr)
	}
}

func TestLiveActivity(t *testing.T) {
	// A DNS responder on 127.0.0.1:53 when it can be bound, else on a free
	// port given to the collector as the DNS port.
	dnsConn, err := net.ListenPacket("udp4", "127.0.0.1:53")
	if err != nil {
		dnsConn, err = net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
	}
	defer dnsConn.Close()
	go dnsResponder(dnsConn)
	dnsPort := uint16(dnsConn.LocalAddr().(*net.UDPAddr).Port)

	s, c := startWith(t, Options{DrainInterval: 20 * time.Millisecond, Host: "test-host", DNSPort: dnsPort})
	if nc := c.Stats().NotCaptured; len(nc) > 0 {
		t.Fatalf("not captured: %v", nc)
	}
	self := int64(os.Getpid())
	exe := resolved(t, "/proc/self/exe")

	// TCP over IPv4 and IPv6 loopback: listen, connect, accept.
	for _, network := range []string{"tcp4", "tcp6"} {
		host := map[string]string{"tcp4": "127.0.0.1", "tcp6": "::1"}[network]
		ln, err := net.Listen(network, net.JoinHostPort(host, "0"))
		if err != nil {
			t.Fatalf("%s: %v", network, err)
		}
		port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
		accepted := make(chan net.Conn, 1)
		go func() {
			conn, err := ln.Accept()
			if err == nil {
				accepted <- conn
			}
		}()
		conn, err := net.Dial(network, ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		server := <-accepted
		clientPort := strconv.Itoa(conn.LocalAddr().(*net.TCPAddr).Port)
		v6 := strconv.FormatBool(network == "tcp6")
		waitEvent(t, s, self, "network_connection", map[string]string{"Action": "bind", "SourceIp": host, "SourcePort": port, "Protocol": "tcp"})
		waitEvent(t, s, self, "network_connection", map[string]string{"Action": "listen", "SourceIp": host, "SourcePort": port})
		ev, _ := waitEvent(t, s, self, "network_connection", map[string]string{"Action": "connect", "Initiated": "true",
			"Protocol": "tcp", "SourceIsIpv6": v6, "SourceIp": host, "SourcePort": clientPort, "DestinationIp": host, "DestinationPort": port})
		if ev.Path != exe || ev.Field("Image") != exe || ev.Source != telemetry.SourceEBPF || ev.Kind != telemetry.KindOther {
			t.Errorf("connect event: Path %q Image %q, want %q; %+v", ev.Path, ev.Field("Image"), exe, ev)
		}
		waitEvent(t, s, self, "network_connection", map[string]string{"Action": "accept", "Initiated": "false",
			"SourceIp": host, "SourcePort": port, "DestinationIp": host, "DestinationPort": clientPort})
		conn.Close()
		server.Close()
		ln.Close()
	}

	// Files: create, write, rename, chmod, delete.
	dir := resolved(t, t.TempDir())
	a, b, renamed := filepath.Join(dir, "a.txt"), filepath.Join(dir, "b.txt"), filepath.Join(dir, "c.txt")
	if err := os.WriteFile(a, []byte("one"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, s, self, "file_event", map[string]string{"Action": "create", "TargetFilename": a, "Image": exe})
	if err := os.WriteFile(b, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(b, os.O_WRONLY, 0) // an existing file written
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("two")
	f.Close()
	waitEvent(t, s, self, "file_event", map[string]string{"Action": "write", "TargetFilename": b})
	if err := os.Rename(a, renamed); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, s, self, "file_rename", map[string]string{"SourceFilename": a, "TargetFilename": renamed})
	if err := os.Chmod(renamed, 0o600); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, s, self, "file_event", map[string]string{"Action": "chmod", "TargetFilename": renamed, "Mode": "0600"})
	if err := os.Remove(renamed); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, s, self, "file_delete", map[string]string{"TargetFilename": renamed})

	// DNS: a query and its answer, paired into one event.
	conn, err := net.Dial("udp4", dnsConn.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	q := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: 4242, RecursionDesired: true})
	q.StartQuestions()
	q.Question(dnsmessage.Question{Name: dnsmessage.MustNewName("quarry-test.example."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET})
	msg, _ := q.Finish()
	conn.Write(msg)
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Read(make([]byte, 512)); err != nil {
		t.Fatalf("no DNS answer: %v", err)
	}
	conn.Close()
	waitEvent(t, s, self, "dns_query", map[string]string{"QueryName": "quarry-test.example", "QueryType": "A",
		"QueryStatus": "NOERROR", "QueryResults": "A: 10.1.2.3", "Image": exe, "DestinationPort": strconv.Itoa(int(dnsPort))})
	waitEvent(t, s, self, "network_connection", map[string]string{"Action": "connect", "Protocol": "udp",
		"DestinationIp": "127.0.0.1", "DestinationPort": strconv.Itoa(int(dnsPort))})

	// ptrace: attach to a child and write one word of its text back.
	child := exec.Command("/bin/sleep", "5")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer child.Process.Kill()
	cpid := child.Process.Pid
	func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := syscall.PtraceAttach(cpid); err != nil {
			t.Fatalf("PTRACE_ATTACH: %v", err)
		}
		var ws syscall.WaitStatus
		syscall.Wait4(cpid, &ws, 0, nil)
		regs := &syscall.PtraceRegs{}
		if err := syscall.PtraceGetRegs(cpid, regs); err == nil {
			word := make([]byte, 8)
			if _, err := syscall.PtracePeekText(cpid, uintptr(regs.PC()), word); err == nil {
				syscall.PtracePokeText(cpid, uintptr(regs.PC()), word)
			}
		}
		syscall.PtraceDetach(cpid)
	}()
	target := strconv.Itoa(cpid)
	ev, _ := waitEvent(t, s, self, "process_access", map[string]string{"GrantedAccess": "ptrace:attach",
		"SourceProcessId": strconv.FormatInt(self, 10), "TargetProcessId": target, "SourceImage": exe})
	if ti := ev.Field("TargetImage"); ti != "" && ti != resolved(t, "/bin/sleep") {
		t.Errorf("TargetImage %q", ti)
	}
	waitEvent(t, s, self, "process_access", map[string]string{"GrantedAccess": "ptrace:poketext", "TargetProcessId": target})

	// memfd_create.
	fd, err := unix.MemfdCreate("quarry-test", 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	waitEvent(t, s, self, "image_load", map[string]string{"ImageLoaded": "memfd:quarry-test", "Action": "memfd_create"})

	// finit_module with a file that is no module: the attempt is reported.
	mod := filepath.Join(dir, "bogus.ko")
	os.WriteFile(mod, []byte("not a module"), 0o600)
	mf, _ := os.Open(mod)
	err = unix.FinitModule(int(mf.Fd()), "", 0)
	mf.Close()
	if err == nil {
		t.Fatal("a bogus module loaded")
	}
	var errno syscall.Errno
	errors.As(err, &errno)
	waitEvent(t, s, self, "driver_load", map[string]string{"ImageLoaded": mod, "Action": "finit_module",
		"Status": "failed: " + unix.ErrnoName(errno)})

	// setgid and setuid, by a child dropping to nobody before exec.
	drop := exec.Command("/bin/true")
	drop.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if err := drop.Run(); err != nil {
		t.Fatal(err)
	}
	dpid := int64(drop.ProcessState.Pid())
	waitEvent(t, s, dpid, "privilege_change", map[string]string{"Action": "setuid", "OldUid": "0", "NewUid": "65534", "NewEuid": "65534"})
	waitEvent(t, s, dpid, "privilege_change", map[string]string{"Action": "setgid", "OldGid": "0", "NewGid": "65534"})

	t.Logf("stats %+v", c.Stats())
	if st := c.Stats(); st.Drops != 0 || st.Malformed != 0 {
		t.Errorf("stats %+v", st)
	}
}

// tcpDNSResponder answers every A query of each connection accepted on ln
// with 10.4.5.6, over TCP (each message after its 2-byte length).
func tcpDNSResponder(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			for {
				var n [2]byte
				if _, err := io.ReadFull(conn, n[:]); err != nil {
					return
				}
				buf := make([]byte, int(n[0])<<8|int(n[1]))
				if _, err := io.ReadFull(conn, buf); err != nil {
					return
				}
				var p dnsmessage.Parser
				h, err := p.Start(buf)
				if err != nil {
					return
				}
				q, err := p.Question()
				if err != nil {
					return
				}
				if strings.HasPrefix(q.Name.String(), "unanswered") {
					continue
				}
				b := dnsmessage.NewBuilder([]byte{0, 0}, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true})
				b.StartQuestions()
				b.Question(q)
				b.StartAnswers()
				b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 60},
					dnsmessage.AResource{A: [4]byte{10, 4, 5, 6}})
				msg, _ := b.Finish()
				msg[0], msg[1] = byte((len(msg)-2)>>8), byte(len(msg)-2)
				conn.Write(msg)
			}
		}()
	}
}

// TestLiveDNSOverTCP makes DNS queries over TCP to a local server (written
// with the length prefix in one write, and with writev and the prefix in a
// buffer of its own, as glibc does), reads each answer as resolvers do (the
// length, then the message) and sees the queries, paired with their
// answers, as dns_query events; a query the server leaves unanswered is
// seen too (so from its sending side), reported when the window ends.
func TestLiveDNSOverTCP(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go tcpDNSResponder(ln)
	port := ln.Addr().(*net.TCPAddr).Port
	s, _ := startWith(t, Options{DrainInterval: 20 * time.Millisecond, Host: "test-host", DNSPort: uint16(port),
		DNSWindow: 300 * time.Millisecond})
	self := int64(os.Getpid())
	exe := resolved(t, "/proc/self/exe")

	conn, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i, name := range []string{"tcp-one-write.example.", "tcp-writev.example.", "unanswered-write.example.", "unanswered-writev.example."} {
		q := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: uint16(5000 + i), RecursionDesired: true})
		q.StartQuestions()
		q.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(name), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET})
		msg, _ := q.Finish()
		prefix := []byte{byte(len(msg) >> 8), byte(len(msg))}
		if i%2 == 0 {
			_, err = conn.Write(append(prefix, msg...))
		} else {
			bufs := net.Buffers{prefix, msg}
			_, err = bufs.WriteTo(conn) // writev
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(name, "unanswered") {
			waitEvent(t, s, self, "dns_query", map[string]string{"QueryName": strings.TrimSuffix(name, "."), "QueryType": "A",
				"QueryStatus": StatusTimeout, "Protocol": "tcp", "DestinationPort": strconv.Itoa(port)})
			continue
		}
		conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		var n [2]byte
		if _, err := io.ReadFull(conn, n[:]); err != nil {
			t.Fatalf("no DNS answer: %v", err)
		}
		if _, err := io.ReadFull(conn, make([]byte, int(n[0])<<8|int(n[1]))); err != nil {
			t.Fatalf("DNS answer cut: %v", err)
		}
		waitEvent(t, s, self, "dns_query", map[string]string{"QueryName": strings.TrimSuffix(name, "."), "QueryType": "A",
			"QueryStatus": "NOERROR", "QueryResults": "A: 10.4.5.6", "Protocol": "tcp", "Image": exe,
			"DestinationIp": "127.0.0.1", "DestinationPort": strconv.Itoa(port)})
	}
}
