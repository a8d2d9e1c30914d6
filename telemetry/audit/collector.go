//go:build linux

package audit

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/importers"
)

// Defaults of Options.
const (
	// DefaultReceiveBuffer is the events socket's receive buffer.
	DefaultReceiveBuffer = 8 << 20
	// DefaultQueue is how many records (datagrams) may wait between the
	// socket reader and the decoder; more are dropped, and counted.
	DefaultQueue = 8192
	// DefaultBacklogLimit is the kernel's audit backlog set while Quarry
	// is the audit daemon (the kernel's default, 64, overflows in a burst).
	DefaultBacklogLimit = 8192
)

// statusEvery is how often the kernel's lost counter is read.
const statusEvery = time.Second

// Options configure a Collector.
type Options struct {
	// Host fills Event.Host.
	Host string
	// Captures are the captures to add rules for (Captures when empty).
	Captures []string
	// ReceiveBuffer, Queue and BacklogLimit: zero means their Default.
	ReceiveBuffer, Queue, BacklogLimit int
}

// OwnedError is returned by Start when another audit daemon (auditd, as a
// rule) holds the kernel's audit socket: Quarry does not take its place.
type OwnedError struct {
	PID  uint32
	Comm string
}

func (e *OwnedError) Error() string {
	return fmt.Sprintf("audit: %s (pid %d) is this host's audit daemon; Quarry does not displace it (stop it, or add Quarry's rules to it and import its log)", e.Comm, e.PID)
}

// Collector is the audit daemon while it runs: it added its rules and
// reads the records. It is created by Start and stops when Start's context
// is done, removing its rules and giving the audit socket back.
type Collector struct {
	ctl, ev *conn
	fn      func(telemetry.Event)
	stream  *importers.AuditStream
	queue   chan batch
	free    chan batch // batches handled, for the reader to reuse
	// pending counts the datagrams queued, at most queueMax.
	pending  atomic.Int64
	queueMax int

	mu       sync.Mutex // ctl
	rules    [][]byte   // as added, to delete exactly these
	saved    status     // the settings changed, to restore
	baseLost uint32
	// staleRemoved counts rules a killed collector left, removed at start.
	staleRemoved int

	events, lost, queueFull, overruns, malformed atomic.Uint64
	closing                                      atomic.Bool // Start's context is done

	done chan struct{}
	err  error
}

// Start makes this process the kernel's audit daemon, adds the syscall
// rules of opts.Captures and calls fn, from one goroutine, for each event
// the records make, until ctx is done. It needs root (CAP_AUDIT_CONTROL);
// it fails with *OwnedError when another audit daemon runs.
func Start(ctx context.Context, opts Options, fn func(telemetry.Event)) (*Collector, error) {
	if fn == nil {
		return nil, errors.New("audit: nil callback")
	}
	if opts.ReceiveBuffer <= 0 {
		opts.ReceiveBuffer = DefaultReceiveBuffer
	}
	if opts.Queue <= 0 {
		opts.Queue = DefaultQueue
	}
	if opts.BacklogLimit <= 0 {
		opts.BacklogLimit = DefaultBacklogLimit
	}
	if len(opts.Captures) == 0 {
		opts.Captures = Captures
	}
	ctl, err := dial(0)
	if err != nil {
		return nil, err
	}
	c := &Collector{ctl: ctl, fn: fn, stream: importers.NewAuditStream(importers.WithHost(opts.Host)),
		queue: make(chan batch, opts.Queue), free: make(chan batch, 64), queueMax: opts.Queue, done: make(chan struct{})}
	if err := c.setup(opts); err != nil {
		c.teardown()
		return nil, err
	}
	go func() {
		select {
		case <-ctx.Done():
			c.closing.Store(true)
			c.ev.Close() // ends the reader
		case <-c.done: // stopped by a read error
		}
	}()
	go c.read()
	go c.run(ctx)
	return c, nil
}

// setup registers as the audit daemon and adds the rules.
func (c *Collector) setup(opts Options) error {
	st, err := c.ctl.getStatus()
	if err != nil {
		return err
	}
	self := os.Getpid()
	if st.PID != 0 && int(st.PID) != self && alive(st.PID) {
		return &OwnedError{PID: st.PID, Comm: comm(st.PID)}
	}
	if st.Enabled == 2 {
		return errors.New("audit: the audit configuration is locked (enabled=2, auditctl -e 2): no rules can be added until reboot")
	}
	c.baseLost = st.Lost
	if c.ev, err = dial(opts.ReceiveBuffer); err != nil {
		return err
	}
	// The records go to the socket that registered.
	if err := c.ev.setStatus(status{Mask: unix.AUDIT_STATUS_PID, PID: uint32(self)}); err != nil {
		c.ev.Close()
		c.ev = nil
		if errors.Is(err, unix.EEXIST) {
			st, _ := c.ctl.getStatus()
			return &OwnedError{PID: st.PID, Comm: comm(st.PID)}
		}
		return fmt.Errorf("audit: registering as the audit daemon: %w", err)
	}
	// Drop, and count, records in a burst rather than make every audited
	// process wait for room (backlog_wait_time); enable audit if it is off.
	set := status{Mask: unix.AUDIT_STATUS_BACKLOG_LIMIT | unix.AUDIT_STATUS_BACKLOG_WAIT_TIME,
		BacklogLimit: uint32(opts.BacklogLimit)}
	c.saved = status{Mask: set.Mask, BacklogLimit: st.BacklogLimit, BacklogWaitTime: st.BacklogWaitTime}
	if st.Enabled == 0 {
		set.Mask |= unix.AUDIT_STATUS_ENABLED
		set.Enabled = 1
		c.saved.Mask |= unix.AUDIT_STATUS_ENABLED
	}
	if err := c.ctl.setStatus(set); err != nil {
		// An old kernel without backlog_wait_time: set what it has.
		set.Mask &^= unix.AUDIT_STATUS_BACKLOG_WAIT_TIME
		c.saved.Mask &^= unix.AUDIT_STATUS_BACKLOG_WAIT_TIME
		if err := c.ctl.setStatus(set); err != nil {
			c.saved.Mask = 0
			return fmt.Errorf("audit: setting the backlog: %w", err)
		}
	}
	// Rules keyed RuleKey now are a killed collector's (only one process
	// can be the audit daemon): remove them, or they would match forever.
	stale, err := c.ctl.listRules()
	if err != nil {
		return err
	}
	for _, r := range stale {
		if ruleKey(r) != RuleKey {
			continue
		}
		if _, err := c.ctl.request(unix.AUDIT_DEL_RULE, r, 0); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("audit: removing a rule a killed collector left: %w", err)
		}
		c.staleRemoved++
	}
	var errs []error
	for _, arch := range arches() {
		for _, r := range rulesFor(opts.Captures) {
			b, ok := r.marshal(arch, self)
			if !ok {
				continue
			}
			_, err := c.ctl.request(unix.AUDIT_ADD_RULE, b, 0)
			switch {
			case err == nil, errors.Is(err, unix.EEXIST): // EEXIST: left by a killed collector; ours to remove
				c.rules = append(c.rules, b)
			case arch == unix.AUDIT_ARCH_I386: // a kernel without 32-bit support
			default:
				errs = append(errs, fmt.Errorf("%s: %w", strings.Join(r.syscalls, ","), err))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("audit: adding rules: %w", errors.Join(errs...))
	}
	return nil
}

// teardown deletes the rules added, restores the settings and gives the
// audit socket back; it is what stopping does, also after a failed Start.
func (c *Collector) teardown() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, b := range c.rules {
		if _, err := c.ctl.request(unix.AUDIT_DEL_RULE, b, 0); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("audit: deleting a rule: %w", err))
		}
	}
	c.rules = nil
	if c.saved.Mask != 0 {
		if err := c.ctl.setStatus(c.saved); err != nil {
			errs = append(errs, fmt.Errorf("audit: restoring the audit settings: %w", err))
		}
	}
	if c.ev != nil {
		st, err := c.ctl.getStatus()
		if err == nil && int(st.PID) == os.Getpid() {
			err = c.ctl.setStatus(status{Mask: unix.AUDIT_STATUS_PID})
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("audit: releasing the audit socket: %w", err))
		}
		c.ev.Close()
	}
	c.ctl.Close()
	return errors.Join(errs...)
}

// maxBatch bounds the datagrams read in one wake-up.
const maxBatch = 256

// read moves datagrams from the socket to the queue, as many as are there
// at each wake-up in one batch (a record a datagram: one hand-over and one
// wake-up per record would cost more than decoding it).
func (c *Collector) read() {
	defer close(c.queue)
	if err := c.ev.f.SetReadDeadline(time.Time{}); err != nil { // registering set one
		c.err = fmt.Errorf("audit: reading the audit socket: %w", err)
		return
	}
	rc, err := c.ev.f.SyscallConn()
	if err != nil {
		c.err = fmt.Errorf("audit: reading the audit socket: %w", err)
		return
	}
	buf := make([]byte, 1<<16)
	for {
		var b batch
		select {
		case b = <-c.free:
		default:
		}
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			for len(b.ends) < maxBatch {
				n, _, err := unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT)
				if errors.Is(err, unix.EAGAIN) {
					break
				}
				if errors.Is(err, unix.ENOBUFS) {
					c.overruns.Add(1)
					continue
				}
				if errors.Is(err, unix.EINTR) {
					continue
				}
				if err != nil {
					rerr = err
					return true
				}
				b.data = append(b.data, buf[:n]...)
				b.ends = append(b.ends, len(b.data))
			}
			return len(b.ends) > 0
		})
		if err == nil {
			err = rerr
		}
		if err != nil {
			if !c.closing.Load() { // a raw read of a closed file fails with poll's own error
				c.err = fmt.Errorf("audit: reading the audit socket: %w", err)
			}
			return
		}
		n := int64(len(b.ends))
		if c.pending.Add(n) > int64(c.queueMax) {
			c.pending.Add(-n)
			c.queueFull.Add(uint64(n))
			b.data, b.ends = b.data[:0], b.ends[:0]
			select {
			case c.free <- b:
			default:
			}
			continue
		}
		c.queue <- b
	}
}

// batch is datagrams read together: data[ends[i-1]:ends[i]] each.
type batch struct {
	data []byte
	ends []int
}

// run decodes the queue, reads the lost counter every second and, when
// the reader has stopped, tears down.
func (c *Collector) run(ctx context.Context) {
	defer close(c.done)
	t := time.NewTicker(statusEvery)
	defer t.Stop()
	emit := func(e telemetry.Event) {
		c.events.Add(1)
		c.fn(e)
	}
	for {
		select {
		case b, ok := <-c.queue:
			if !ok {
				c.stream.Flush(emit)
				if err := c.teardown(); err != nil && c.err == nil {
					c.err = err
				}
				return
			}
			start := 0
			for _, end := range b.ends {
				c.handle(b.data[start:end], emit)
				start = end
			}
			c.pending.Add(-int64(len(b.ends)))
			b.data, b.ends = b.data[:0], b.ends[:0]
			select {
			case c.free <- b:
			default:
			}
		case <-t.C:
			c.pollLost()
		}
	}
}

// handle decodes one datagram.
func (c *Collector) handle(d []byte, emit func(telemetry.Event)) {
	typ, text, err := decodeRecord(d)
	if err != nil {
		c.malformed.Add(1)
		return
	}
	if typ < recordTypeMin {
		return
	}
	if err := c.stream.Record(typ, text, emit); err != nil {
		c.malformed.Add(1)
	}
}

// decodeRecord reads the one audit record of a datagram: its type and text
// (trailing NULs and newline dropped). The text is a copy.
func decodeRecord(d []byte) (uint16, string, error) {
	if len(d) < nlmsgHdrLen {
		return 0, "", fmt.Errorf("audit: datagram of %d bytes", len(d))
	}
	l := int(binary.NativeEndian.Uint32(d))
	typ := binary.NativeEndian.Uint16(d[4:])
	switch {
	case typ >= recordTypeMin && l != len(d) && l <= len(d)-nlmsgHdrLen:
		l = len(d) // a record's length without its header
	case l < nlmsgHdrLen || l > len(d):
		return 0, "", fmt.Errorf("audit: netlink message of type %d claims %d bytes of %d", typ, l, len(d))
	}
	if rest := len(d) - (l+3)&^3; rest > 0 {
		return 0, "", fmt.Errorf("audit: %d bytes after the record", rest)
	}
	return typ, string(bytes.TrimRight(d[nlmsgHdrLen:l], "\x00\n")), nil
}

func (c *Collector) pollLost() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, err := c.ctl.getStatus(); err == nil && st.Lost >= c.baseLost {
		c.lost.Store(uint64(st.Lost - c.baseLost))
	}
}

// Wait blocks until the collector has stopped (rules removed, the socket
// given back) and returns the error that stopped it, nil after a clean
// shutdown.
func (c *Collector) Wait() error {
	<-c.done
	return c.err
}

// Stats returns the counts so far.
func (c *Collector) Stats() Stats {
	c.mu.Lock()
	rules := len(c.rules)
	c.mu.Unlock()
	return Stats{Events: c.events.Load(), Lost: c.lost.Load(), QueueFull: c.queueFull.Load(),
		Overruns: c.overruns.Load(), Malformed: c.malformed.Load(), Rules: rules, StaleRemoved: c.staleRemoved}
}

// alive reports whether a process of that pid exists.
func alive(pid uint32) bool {
	_, err := os.Stat("/proc/" + strconv.FormatUint(uint64(pid), 10))
	return err == nil
}

// comm returns a process's name, "an audit daemon" when it cannot be read.
func comm(pid uint32) string {
	b, err := os.ReadFile("/proc/" + strconv.FormatUint(uint64(pid), 10) + "/comm")
	if err != nil {
		return "an audit daemon"
	}
	return strings.TrimSpace(string(b))
}

// ListRules returns the keys of the kernel's audit rules, one per rule (""
// for a rule without a key), as AUDIT_LIST_RULES tells them.
func ListRules() ([]string, error) {
	c, err := dial(0)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	rules, err := c.listRules()
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(rules))
	for i, r := range rules {
		keys[i] = ruleKey(r)
	}
	return keys, nil
}
