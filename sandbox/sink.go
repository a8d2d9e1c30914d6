//go:build linux

package sandbox

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/sys/unix"
)

// sink is a network namespace whose every IPv4 (and, where the kernel has
// IPv6, every IPv6) address is local, with a DNS server and TCP listeners
// in it.
type sink struct {
	ipv6    bool // IPv6 is sunk too
	mu      sync.Mutex
	records []SinkRecord
	dropped int
	udp     *net.UDPConn
	tcp     []net.Listener
	wg      sync.WaitGroup
}

// startSink moves the calling (locked, to be discarded) thread into a new
// network namespace, makes every IPv4 and IPv6 address local in it and
// starts the DNS server and the TCP listeners there.
func startSink() (*sink, error) {
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return nil, fmt.Errorf("sandbox: sink network namespace: %w", err)
	}
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"route", "add", "local", "0.0.0.0/0", "dev", "lo"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("sandbox: sink: ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
		}
	}
	// Every IPv6 address too, where the kernel has IPv6: the listeners are
	// then dual-stack. Without it an IPv6 connection fails (the namespace
	// has no other route), so nothing leaves either way.
	s := &sink{ipv6: exec.Command("ip", "-6", "route", "add", "local", "::/0", "dev", "lo").Run() == nil}
	tcpNet, udpNet := "tcp4", "udp4"
	if s.ipv6 {
		tcpNet, udpNet = "tcp", "udp"
	}
	udp, err := net.ListenUDP(udpNet, &net.UDPAddr{Port: 53})
	if err != nil {
		return nil, fmt.Errorf("sandbox: sink DNS: %w", err)
	}
	s.udp = udp
	s.wg.Add(1)
	go s.serveDNS()
	for _, p := range SinkPorts {
		l, err := net.Listen(tcpNet, ":"+strconv.Itoa(p))
		if err != nil {
			s.close()
			return nil, fmt.Errorf("sandbox: sink port %d: %w", p, err)
		}
		s.tcp = append(s.tcp, l)
		s.wg.Add(1)
		go s.serveTCP(l)
	}
	return s, nil
}

// MaxSinkRecords bounds what the sink keeps of one run: a sample that
// queries or connects in a loop is not recorded past it (counted).
const MaxSinkRecords = 10_000

func (s *sink) add(r SinkRecord) {
	s.mu.Lock()
	if len(s.records) < MaxSinkRecords {
		s.records = append(s.records, r)
	} else {
		s.dropped++
	}
	s.mu.Unlock()
}

// close stops the sink and returns what it recorded and how many records
// it dropped.
func (s *sink) close() ([]SinkRecord, int) {
	if s.udp != nil {
		s.udp.Close()
	}
	for _, l := range s.tcp {
		l.Close()
	}
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.records, s.dropped
}

func (s *sink) serveDNS() {
	defer s.wg.Done()
	buf := make([]byte, 1500)
	for {
		n, from, err := s.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		reply, name, err := answerDNS(buf[:n])
		if err != nil {
			continue
		}
		s.add(SinkRecord{Time: time.Now().UTC(), Protocol: "dns", Dest: s.udp.LocalAddr().String(), Source: from.String(), Query: name})
		s.udp.WriteToUDPAddrPort(reply, from)
	}
}

// answerDNS answers a query: an A record of SinkAddr for every name asked
// an A record, no records (NOERROR) for other types.
func answerDNS(q []byte) (reply []byte, name string, err error) {
	var p dnsmessage.Parser
	h, err := p.Start(q)
	if err != nil {
		return nil, "", err
	}
	qs, err := p.AllQuestions()
	if err != nil || len(qs) == 0 {
		return nil, "", errors.New("dns: no question")
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true})
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, "", err
	}
	for _, q := range qs {
		b.Question(q)
	}
	if err := b.StartAnswers(); err != nil {
		return nil, "", err
	}
	for _, q := range qs {
		if q.Type == dnsmessage.TypeA {
			b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}, dnsmessage.AResource{A: SinkAddr.As4()})
		}
	}
	out, err := b.Finish()
	return out, strings.TrimSuffix(qs[0].Name.String(), "."), err
}

func (s *sink) serveTCP(l net.Listener) {
	defer s.wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.add(serveConn(c))
		}()
	}
}

// serveConn reads what the sample sends first: a TLS ClientHello (its
// server name is recorded, the handshake then fails), an HTTP request (its
// request line and Host are recorded, and it gets an empty 200), or other
// bytes (the first 256, quoted).
func serveConn(c net.Conn) SinkRecord {
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	rec := SinkRecord{Time: time.Now().UTC(), Protocol: "tcp", Dest: c.LocalAddr().String(), Source: c.RemoteAddr().String()}
	br := bufio.NewReader(c)
	first, err := br.Peek(1)
	if err != nil {
		return rec
	}
	switch {
	case first[0] == 0x16: // a TLS handshake record
		rec.Protocol = "tls"
		conn := &peekedConn{Conn: c, r: br}
		tls.Server(conn, &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			rec.SNI = h.ServerName
			return nil, errors.New("sink: handshake ends here")
		}}).Handshake()
	case first[0] >= 'A' && first[0] <= 'Z':
		line, err := br.ReadString('\n')
		line = strings.TrimSpace(line)
		if err == nil && strings.Contains(line, " HTTP/") {
			rec.Protocol, rec.Request = "http", line
			for {
				h, err := br.ReadString('\n')
				h = strings.TrimSpace(h)
				if err != nil || h == "" {
					break
				}
				if k, v, ok := strings.Cut(h, ":"); ok && strings.EqualFold(k, "host") {
					rec.Host = strings.TrimSpace(v)
				}
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			return rec
		}
		rec.Data = strconv.Quote(line)
	default:
		b := make([]byte, 256)
		n, _ := br.Read(b)
		rec.Data = strconv.Quote(string(b[:n]))
	}
	return rec
}

// peekedConn reads through the buffered reader that peeked at the start.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (p *peekedConn) Read(b []byte) (int, error) { return p.r.Read(b) }
