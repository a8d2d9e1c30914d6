//go:build linux

package ebpf

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
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

	// Disable names activity captures not to load (CaptureFile…); process
	// start and exit are always captured.
	Disable []string
	// FileRate bounds the file events (create, write, chmod, delete,
	// rename) each process may emit per second, with bursts of FileBurst:
	// a build writing thousands of files does not flood the store. What is
	// held back is counted in Stats.RateLimitedFile. Zero means
	// DefaultFileRate and DefaultFileBurst; a negative rate, no limit.
	FileRate  float64
	FileBurst int
	// NetRate and NetBurst bound likewise each process's network, DNS,
	// ptrace and memfd events; zero means DefaultNetRate and
	// DefaultNetBurst, a negative rate no limit.
	NetRate  float64
	NetBurst int
	// DNSPort is the UDP port whose messages are DNS; zero means 53.
	DNSPort uint16
	// DNSWindow is how long a query waits for its answer before it is
	// reported with QueryStatus TIMEOUT; zero means DefaultDNSWindow.
	DNSWindow time.Duration
	// IncludePaths, when not empty, keeps only the file events whose path
	// is under one of these prefixes; ExcludePaths drops those under one of
	// its prefixes (nil means DefaultExcludePaths; an empty non-nil slice
	// excludes nothing). Dropped events are counted in Stats.Filtered.
	IncludePaths, ExcludePaths []string

	rawOnly      bool   // attach the raw_tracepoint programs (tests)
	fmodeCreated uint32 // FMODE_CREATED, when the kernel's differs (tests)
}

// Defaults of Options.
const (
	DefaultFileRate  = 100
	DefaultFileBurst = 1000
	DefaultNetRate   = 1000
	DefaultNetBurst  = 10000
	DefaultDNSWindow = 5 * time.Second
)

// Stats counts what a Collector has seen.
type Stats struct {
	Events    uint64 // records delivered as events
	Drops     uint64 // records the kernel could not write: the ring was full
	Malformed uint64 // records that could not be decoded
	Attach    string // AttachTPBTF or AttachRawTracepoint
	// RateLimitedFile, RateLimitedNetwork and RateLimitedOther count the
	// records the per-process rate limits held back in the kernel: file
	// events; network and DNS; ptrace, process_vm_writev and memfd.
	RateLimitedFile, RateLimitedNetwork, RateLimitedOther uint64
	// Filtered counts the file events dropped by the path filter.
	Filtered uint64
	// NotCaptured lists the activity captures that are not (fully) running,
	// each as "capture: why"; captures disabled by Options.Disable are not
	// listed.
	NotCaptured []string
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

	events, malformed, filtered atomic.Uint64
	lastDrops                   atomic.Uint64
	lastLimited                 [3]atomic.Uint64

	include, exclude []string
	dns              *dnsTracker

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
	cfg := config{ringSize: opts.RingSize, rawOnly: opts.rawOnly, disable: opts.Disable, dnsPort: opts.DNSPort,
		fmodeCreated: opts.fmodeCreated}
	if cfg.dnsPort == 0 {
		cfg.dnsPort = 53
	}
	cfg.fileInterval, cfg.fileTolerance = limit(opts.FileRate, opts.FileBurst, DefaultFileRate, DefaultFileBurst)
	cfg.netInterval, cfg.netTolerance = limit(opts.NetRate, opts.NetBurst, DefaultNetRate, DefaultNetBurst)
	window := opts.DNSWindow
	if window <= 0 {
		window = DefaultDNSWindow
	}
	exclude := opts.ExcludePaths
	if exclude == nil {
		exclude = DefaultExcludePaths
	}
	progs, err := load(cfg)
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
		done:    make(chan struct{}),
		include: slices.Clone(opts.IncludePaths), exclude: slices.Clone(exclude), dns: newDNSTracker(window),
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
		Events:      c.events.Load(),
		Malformed:   c.malformed.Load(),
		Attach:      c.progs.mode,
		Drops:       c.lastDrops.Load(),
		Filtered:    c.filtered.Load(),
		NotCaptured: c.progs.notCaptured(),
	}
	limited := [3]uint64{c.lastLimited[0].Load(), c.lastLimited[1].Load(), c.lastLimited[2].Load()}
	select {
	case <-c.done:
	default:
		if n, err := c.progs.drops(); err == nil {
			s.Drops = n
		}
		if l, err := c.progs.rateLimited(); err == nil {
			limited = l
		}
	}
	s.RateLimitedFile, s.RateLimitedNetwork, s.RateLimitedOther = limited[0], limited[1], limited[2]
	return s
}

// limit turns a rate (events per second) and a burst into the kernel's
// emission interval and tolerance, in nanoseconds; 0, 0 is no limit.
func limit(rate float64, burst int, defRate float64, defBurst int) (interval, tolerance uint64) {
	if rate < 0 {
		return 0, 0
	}
	if rate == 0 {
		rate, burst = defRate, defBurst
	}
	if burst <= 0 {
		burst = 1
	}
	interval = max(uint64(1e9/rate), 1)
	return interval, interval * uint64(burst-1)
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
	for _, ev := range c.dns.expire(time.Now(), true) {
		c.deliver(ev)
	}
	if n, err := c.progs.drops(); err == nil {
		c.lastDrops.Store(n)
	}
	if l, err := c.progs.rateLimited(); err == nil {
		for i := range l {
			c.lastLimited[i].Store(l[i])
		}
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
			break
		}
		if err != nil {
			return fmt.Errorf("ebpf: reading the ring buffer: %w", err)
		}
		a, err := decodeRecord(rec.RawSample, c.clk, c.host)
		if err != nil {
			c.malformed.Add(1)
			continue
		}
		c.handle(a)
	}
	for _, ev := range c.dns.expire(time.Now(), false) {
		c.deliver(ev)
	}
	return nil
}

func (c *Collector) deliver(ev telemetry.Event) {
	c.events.Add(1)
	c.fn(ev)
}

// handle filters, completes and delivers one decoded record.
func (c *Collector) handle(a activity) {
	ev := &a.ev
	switch ev.Category {
	case "file_event", "file_delete", "file_rename":
		if !c.keepPath(ev.Field("TargetFilename")) && !c.keepPath(ev.Field("SourceFilename")) {
			c.filtered.Add(1)
			return
		}
	case "process_access":
		if target := ev.Field("TargetProcessId"); target != "" {
			if exe, err := os.Readlink("/proc/" + target + "/exe"); err == nil {
				ev.Fields.Set("TargetImage", strings.TrimSuffix(exe, " (deleted)"))
			}
		}
	case "dns_query":
		for _, done := range c.dns.add(a) {
			c.deliver(done)
		}
		return
	}
	c.deliver(*ev)
}

// keepPath applies the path filter to a file event's path ("" is never
// kept).
func (c *Collector) keepPath(p string) bool {
	if p == "" {
		return false
	}
	for _, x := range c.exclude {
		if strings.HasPrefix(p, x) || p == strings.TrimSuffix(x, "/") {
			return false
		}
	}
	if len(c.include) == 0 {
		return true
	}
	for _, in := range c.include {
		if strings.HasPrefix(p, in) {
			return true
		}
	}
	return false
}
