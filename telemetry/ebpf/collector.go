package ebpf

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf/ringbuf"

	"github.com/quarry-sec/quarry/telemetry"
)

// DefaultDrainInterval is how often the ring buffer is drained when
// Options.DrainInterval is zero.
const DefaultDrainInterval = 50 * time.Millisecond

// Options configure a Collector.
type Options struct {
	// DrainInterval is how often the ring buffer is read (20–200 ms make
	// sense); zero means DefaultDrainInterval. The kernel never wakes the
	// reader: records wait in the ring until the next drain.
	DrainInterval time.Duration
	// Host fills Event.Host.
	Host string
	// RingSize overrides the ring buffer's size in bytes (a power of two,
	// a multiple of the page size); zero keeps the built-in 16 MiB.
	RingSize uint32

	rawOnly bool // attach the raw_tracepoint programs (tests)
}

// Stats counts what a Collector has seen.
type Stats struct {
	Events    uint64 // records delivered as events
	Drops     uint64 // records the kernel could not write: the ring was full
	Malformed uint64 // records that could not be decoded
	Attach    string // AttachTPBTF or AttachRawTracepoint
}

// Collector delivers exec and exit events from the kernel. It is created
// by Start and stops when Start's context is done.
type Collector struct {
	progs    *programs
	rd       *ringbuf.Reader
	fn       func(telemetry.Event)
	host     string
	interval time.Duration
	// clk is read once, so that a process's exec and exit carry the same
	// StartTime.
	clk clock

	events, malformed atomic.Uint64
	lastDrops         atomic.Uint64

	done chan struct{}
	err  error
	once sync.Once
}

// Start loads and attaches the programs and calls fn, from one goroutine,
// for every exec and process exit until ctx is done; what is left in the
// ring then is delivered before Wait returns. The error of a collector that
// cannot start wraps the kernel's (EPERM, a missing BTF, an unknown
// program type…).
func Start(ctx context.Context, opts Options, fn func(telemetry.Event)) (*Collector, error) {
	if fn == nil {
		return nil, errors.New("ebpf: nil callback")
	}
	interval := opts.DrainInterval
	if interval <= 0 {
		interval = DefaultDrainInterval
	}
	clk, err := bootClock()
	if err != nil {
		return nil, err
	}
	progs, err := load(opts.RingSize, opts.rawOnly)
	if err != nil {
		return nil, err
	}
	rd, err := ringbuf.NewReader(progs.Events)
	if err != nil {
		progs.close()
		return nil, fmt.Errorf("ebpf: opening the ring buffer: %w", err)
	}
	// A deadline in the past turns every read into a non-blocking drain.
	rd.SetDeadline(time.Unix(1, 0))
	c := &Collector{
		progs: progs, rd: rd, fn: fn, host: opts.Host, interval: interval, clk: clk,
		done: make(chan struct{}),
	}
	go c.run(ctx)
	return c, nil
}

// Wait blocks until the collector has stopped and returns the error that
// stopped it, nil after a clean shutdown.
func (c *Collector) Wait() error {
	<-c.done
	return c.err
}

// Stats returns the counts so far.
func (c *Collector) Stats() Stats {
	s := Stats{
		Events:    c.events.Load(),
		Malformed: c.malformed.Load(),
		Attach:    c.progs.mode,
		Drops:     c.lastDrops.Load(),
	}
	select {
	case <-c.done:
	default:
		if n, err := c.progs.drops(); err == nil {
			s.Drops = n
		}
	}
	return s
}

func (c *Collector) run(ctx context.Context) {
	defer close(c.done)
	// The drain interval backs off (doubling, up to maxIdleInterval) while
	// the ring stays empty and returns to the configured interval as soon as
	// a drain finds records: an idle host costs few wake-ups, a busy one gets
	// the configured latency.
	interval := c.interval
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			c.err = c.shutdown()
			return
		case <-t.C:
			before := c.events.Load() + c.malformed.Load()
			if err := c.drain(); err != nil {
				c.err = errors.Join(err, c.shutdown())
				return
			}
			if c.events.Load()+c.malformed.Load() == before {
				interval = min(interval*2, max(maxIdleInterval, c.interval))
			} else {
				interval = c.interval
			}
			t.Reset(interval)
		}
	}
}

// maxIdleInterval bounds the drain interval's back-off on an idle host.
const maxIdleInterval = 200 * time.Millisecond

// shutdown detaches the programs, delivers what is left in the ring and
// frees everything.
func (c *Collector) shutdown() error {
	errs := []error{c.progs.detach(), c.drain()}
	if n, err := c.progs.drops(); err == nil {
		c.lastDrops.Store(n)
	}
	errs = append(errs, c.rd.Close(), c.progs.close())
	return errors.Join(errs...)
}

// drain reads every record now in the ring.
func (c *Collector) drain() error {
	var rec ringbuf.Record
	for {
		err := c.rd.ReadInto(&rec)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("ebpf: reading the ring buffer: %w", err)
		}
		ev, err := decode(rec.RawSample, c.clk, c.host)
		if err != nil {
			c.malformed.Add(1)
			continue
		}
		c.events.Add(1)
		c.fn(ev)
	}
}
