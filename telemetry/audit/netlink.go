//go:build linux

package audit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// nlmsgHdrLen is the size of struct nlmsghdr.
const nlmsgHdrLen = 16

// requestTimeout bounds the wait for the kernel's answer to a request.
const requestTimeout = 5 * time.Second

// status is struct audit_status (linux/audit.h), as far as Quarry uses it.
type status struct {
	Mask, Enabled, Failure, PID, RateLimit, BacklogLimit, Lost, Backlog uint32
	Version, BacklogWaitTime                                            uint32
}

const statusLen = 10 * 4

func (s status) marshal() []byte {
	b := make([]byte, statusLen)
	ne := binary.NativeEndian
	for i, v := range [...]uint32{s.Mask, s.Enabled, s.Failure, s.PID, s.RateLimit, s.BacklogLimit, s.Lost, s.Backlog, s.Version, s.BacklogWaitTime} {
		ne.PutUint32(b[4*i:], v)
	}
	return b
}

func parseStatus(b []byte) (status, error) {
	if len(b) < 8*4 {
		return status{}, fmt.Errorf("audit status of %d bytes", len(b))
	}
	var v [10]uint32
	for i := range v {
		if 4*i+4 <= len(b) {
			v[i] = binary.NativeEndian.Uint32(b[4*i:])
		}
	}
	return status{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9]}, nil
}

// conn is one NETLINK_AUDIT socket, read through the runtime poller so that
// a read can time out and Close can stop a blocked read.
type conn struct {
	f   *os.File
	seq uint32
	buf []byte
}

// dial opens a NETLINK_AUDIT socket with a receive buffer of rcvbuf bytes.
func dial(rcvbuf int) (*conn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_AUDIT)
	if err != nil {
		return nil, fmt.Errorf("audit: netlink audit socket: %w", err)
	}
	if rcvbuf > 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf); err != nil {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf)
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("audit: binding the netlink audit socket: %w", err)
	}
	return &conn{f: os.NewFile(uintptr(fd), "netlink-audit"), buf: make([]byte, 1<<16)}, nil
}

func (c *conn) Close() error { return c.f.Close() }

// send writes one request and returns its sequence number.
func (c *conn) send(typ uint16, flags uint16, payload []byte) (uint32, error) {
	c.seq++
	b := make([]byte, nlmsgHdrLen+len(payload))
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], typ)
	ne.PutUint16(b[6:], unix.NLM_F_REQUEST|flags)
	ne.PutUint32(b[8:], c.seq)
	copy(b[nlmsgHdrLen:], payload)
	rc, err := c.f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var serr error
	if err := rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		return !errors.Is(serr, unix.EAGAIN)
	}); err != nil {
		return 0, err
	}
	return c.seq, serr
}

// message is one decoded netlink message.
type message struct {
	typ  uint16
	seq  uint32
	data []byte
}

// read returns the messages of the next datagram (nil, nil on a timeout).
func (c *conn) read(deadline time.Time) ([]message, error) {
	if err := c.f.SetReadDeadline(deadline); err != nil {
		return nil, err
	}
	n, err := c.f.Read(c.buf)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return splitMessages(c.buf[:n])
}

// splitMessages decodes the netlink messages of a datagram (copying their
// payloads). Answers to requests are well-formed netlink; audit records
// carry a length that leaves out the header (a long-standing kernel quirk),
// so a message whose length does not fit is taken to run to the end of the
// datagram.
func splitMessages(b []byte) ([]message, error) {
	var out []message
	ne := binary.NativeEndian
	for len(b) >= nlmsgHdrLen {
		l := int(ne.Uint32(b))
		m := message{typ: ne.Uint16(b[4:]), seq: ne.Uint32(b[8:])}
		end := l
		switch {
		case m.typ >= recordTypeMin && l != len(b) && l <= len(b)-nlmsgHdrLen:
			end = len(b) // a record's length without its header
		case l < nlmsgHdrLen || l > len(b):
			return out, fmt.Errorf("audit: netlink message of type %d claims %d bytes of %d", m.typ, l, len(b))
		}
		m.data = append([]byte(nil), b[nlmsgHdrLen:end]...)
		out = append(out, m)
		b = b[min((end+3)&^3, len(b)):]
	}
	if len(b) != 0 {
		return out, fmt.Errorf("audit: %d bytes after the last netlink message", len(b))
	}
	return out, nil
}

// recordTypeMin is the lowest message type of an audit record (the first
// user message); lower types are requests and their answers.
const recordTypeMin = 1100

// errno reads an NLMSG_ERROR payload: 0 for an acknowledgement.
func errno(data []byte) error {
	if len(data) < 4 {
		return errors.New("audit: short netlink error message")
	}
	if e := int32(binary.NativeEndian.Uint32(data)); e != 0 {
		return syscall.Errno(-e)
	}
	return nil
}

// request sends typ with payload and waits for its acknowledgement and,
// when want is not zero, for a reply of that type (returned). Messages
// that answer nothing (audit records arriving meanwhile) are dropped.
func (c *conn) request(typ uint16, payload []byte, want uint16) ([]byte, error) {
	seq, err := c.send(typ, unix.NLM_F_ACK, payload)
	if err != nil {
		return nil, err
	}
	var reply []byte
	acked, replied := false, want == 0
	deadline := time.Now().Add(requestTimeout)
	for !acked || !replied {
		msgs, err := c.read(deadline)
		if err != nil {
			return nil, err
		}
		if msgs == nil {
			return nil, fmt.Errorf("no answer within %s", requestTimeout)
		}
		for _, m := range msgs {
			switch {
			case m.seq == seq && m.typ == unix.NLMSG_ERROR:
				if err := errno(m.data); err != nil {
					return nil, err
				}
				acked = true
			case m.seq == seq && want != 0 && m.typ == want:
				reply, replied = m.data, true
			}
		}
	}
	return reply, nil
}

// getStatus asks the kernel for its audit status.
func (c *conn) getStatus() (status, error) {
	b, err := c.request(unix.AUDIT_GET, nil, unix.AUDIT_GET)
	if err != nil {
		return status{}, fmt.Errorf("audit: reading the audit status: %w", err)
	}
	return parseStatus(b)
}

// setStatus sets the fields of s that s.Mask names.
func (c *conn) setStatus(s status) error {
	_, err := c.request(unix.AUDIT_SET, s.marshal(), 0)
	return err
}

// listRules returns the kernel's audit rules (struct audit_rule_data each).
func (c *conn) listRules() ([][]byte, error) {
	seq, err := c.send(unix.AUDIT_LIST_RULES, unix.NLM_F_ACK, nil)
	if err != nil {
		return nil, err
	}
	var rules [][]byte
	deadline := time.Now().Add(requestTimeout)
	for {
		msgs, err := c.read(deadline)
		if err != nil {
			return nil, err
		}
		if msgs == nil {
			return nil, fmt.Errorf("audit: listing rules: no answer within %s", requestTimeout)
		}
		for _, m := range msgs {
			if m.seq != seq {
				continue
			}
			switch m.typ {
			case unix.NLMSG_ERROR:
				if err := errno(m.data); err != nil {
					return nil, fmt.Errorf("audit: listing rules: %w", err)
				}
			case unix.AUDIT_LIST_RULES:
				rules = append(rules, m.data)
			case unix.NLMSG_DONE:
				return rules, nil
			}
		}
	}
}
