//go:build linux

package cnproc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/quarry-sec/quarry/telemetry"
)

// DefaultReceiveBuffer is the socket's receive buffer when
// Options.ReceiveBuffer is zero: room for a burst of ~50,000 events.
const DefaultReceiveBuffer = 8 << 20

// maxForks bounds the table of recent forks (pid → parent and start time).
const maxForks = 1 << 16

// Options configure a Collector.
type Options struct {
	// Host fills Event.Host.
	Host string
	// ReceiveBuffer is the socket's receive buffer in bytes; zero means
	// DefaultReceiveBuffer.
	ReceiveBuffer int
}

// Stats counts what a Collector has seen.
type Stats struct {
	Events    uint64 // events delivered
	Partial   uint64 // exec events delivered with Partial set
	Lost      uint64 // times the kernel dropped messages (receive buffer full)
	Malformed uint64 // messages that could not be decoded
}

// Collector delivers exec and exit events from the process connector. It
// is created by Start and stops when Start's context is done.
type Collector struct {
	f    *os.File
	fn   func(telemetry.Event)
	host string
	proc *procReader
	// clk is read once, so that all events share one clock conversion.
	clk clocks

	// forks remembers each new process's parent and start time, for execs
	// whose /proc entry is gone and for exits.
	forks map[uint32]forkInfo

	events, partial, lost, malformed atomic.Uint64

	done chan struct{}
	err  error
}

type forkInfo struct {
	ppid  uint32
	start time.Time
}

// Start subscribes to the process connector and calls fn, from one
// goroutine, for every exec and process exit until ctx is done. It needs
// CAP_NET_ADMIN.
func Start(ctx context.Context, opts Options, fn func(telemetry.Event)) (*Collector, error) {
	if fn == nil {
		return nil, errors.New("cnproc: nil callback")
	}
	clk, err := newClocks()
	if err != nil {
		return nil, err
	}
	f, err := open(opts.ReceiveBuffer)
	if err != nil {
		return nil, err
	}
	c := &Collector{
		f: f, fn: fn, host: opts.Host, proc: newProcReader(), clk: clk,
		forks: make(map[uint32]forkInfo),
		done:  make(chan struct{}),
	}
	go func() {
		<-ctx.Done()
		f.Close()
	}()
	go c.run()
	return c, nil
}

// open creates the filtered, subscribed netlink socket.
func open(rcvbuf int) (*os.File, error) {
	if rcvbuf <= 0 {
		rcvbuf = DefaultReceiveBuffer
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_CONNECTOR)
	if err != nil {
		return nil, fmt.Errorf("cnproc: netlink connector socket: %w", err)
	}
	fail := func(err error) (*os.File, error) {
		unix.Close(fd)
		return nil, err
	}
	if err := attachFilter(fd); err != nil {
		return fail(err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf); err != nil {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf); err != nil {
			return fail(fmt.Errorf("cnproc: setting the receive buffer: %w", err))
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: cnIdxProc}); err != nil {
		return fail(fmt.Errorf("cnproc: binding to the process connector: %w", err))
	}
	if err := unix.Sendto(fd, listenMessage(false), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fail(fmt.Errorf("cnproc: subscribing to process events: %w", err))
	}
	return os.NewFile(uintptr(fd), "netlink-connector"), nil
}

// Wait blocks until the collector has stopped and returns the error that
// stopped it, nil after a clean shutdown.
func (c *Collector) Wait() error {
	<-c.done
	return c.err
}

// Stats returns the counts so far.
func (c *Collector) Stats() Stats {
	return Stats{
		Events: c.events.Load(), Partial: c.partial.Load(),
		Lost: c.lost.Load(), Malformed: c.malformed.Load(),
	}
}

func (c *Collector) run() {
	defer close(c.done)
	buf := make([]byte, 64<<10)
	for {
		n, err := c.f.Read(buf)
		if errors.Is(err, unix.ENOBUFS) {
			c.lost.Add(1)
			continue
		}
		if errors.Is(err, os.ErrClosed) {
			return
		}
		if err != nil {
			c.err = fmt.Errorf("cnproc: reading the netlink socket: %w", err)
			c.f.Close()
			return
		}
		c.handleDatagram(buf[:n], c.clk)
	}
}

// handleDatagram handles each netlink message in one datagram.
func (c *Collector) handleDatagram(b []byte, clk clocks) {
	for len(b) >= nlmsgHdrLen {
		l := int(binary.NativeEndian.Uint32(b))
		if l < nlmsgHdrLen || l > len(b) {
			c.malformed.Add(1)
			return
		}
		pe, err := parseMessage(b[:l])
		if err != nil {
			c.malformed.Add(1)
		} else {
			c.handle(pe, clk)
		}
		b = b[min((l+3)&^3, len(b)):]
	}
}

func (c *Collector) handle(pe procEvent, clk clocks) {
	at := time.Unix(0, clk.monoWall+int64(pe.timestampNs)).UTC()
	switch pe.what {
	case procEventFork:
		if len(c.forks) >= maxForks {
			clear(c.forks) // forks of processes whose exit was missed
		}
		c.forks[pe.tgid] = forkInfo{ppid: pe.parentTGID, start: at}
	case procEventExec:
		ev := telemetry.NewEvent(telemetry.KindExec, telemetry.SourceCnProc)
		ev.Time, ev.Host, ev.PID = at, c.host, int64(pe.tgid)
		_ = c.proc.fill(&ev, ev.PID, clk.bootWall) // a lost race leaves Partial set
		if fi, ok := c.forks[pe.tgid]; ok {
			if ev.PPID == telemetry.Unknown {
				ev.PPID = int64(fi.ppid)
			}
			ev.StartTime = fi.start // finer than /proc's clock ticks
		}
		if ev.Partial {
			c.partial.Add(1)
		}
		c.deliver(ev)
	case procEventExit:
		ev := telemetry.NewEvent(telemetry.KindExit, telemetry.SourceCnProc)
		ev.Time, ev.Host, ev.PID = at, c.host, int64(pe.tgid)
		if pe.parentTGID != 0 { // 0 when the kernel no longer knew the parent
			ev.PPID = int64(pe.parentTGID)
		}
		if fi, ok := c.forks[pe.tgid]; ok {
			if ev.PPID == telemetry.Unknown {
				ev.PPID = int64(fi.ppid)
			}
			ev.StartTime = fi.start
			delete(c.forks, pe.tgid)
		}
		code, sig := (pe.exitCode>>8)&0xff, pe.exitCode&0x7f
		ev.ExitCode, ev.ExitSignal = int64(code), int(sig)
		if sig != 0 {
			ev.ExitCode = 128 + int64(sig)
		}
		c.deliver(ev)
	}
}

func (c *Collector) deliver(ev telemetry.Event) {
	c.events.Add(1)
	c.fn(ev)
}
