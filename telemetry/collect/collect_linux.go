//go:build linux

package collect

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/cnproc"
	"github.com/quarry-sec/quarry/telemetry/ebpf"
	"github.com/quarry-sec/quarry/telemetry/lineage"
)

// Collector is a running source. It stops when Start's context is done.
type Collector struct {
	source   telemetry.Source
	fallback error
	seeded   int
	events   atomic.Uint64

	ebpf   *ebpf.Collector
	cnproc *cnproc.Collector
}

// Start seeds lineage from /proc, starts the chosen source and calls fn,
// from one goroutine, for every exec and exit event, enriched with lineage,
// until ctx is done.
func Start(ctx context.Context, opts Options, fn func(telemetry.Event)) (*Collector, error) {
	if fn == nil {
		return nil, errors.New("collect: nil callback")
	}
	if err := opts.check(); err != nil {
		return nil, err
	}
	lin := lineage.New(opts.Lineage)
	c := &Collector{}
	if procs, err := cnproc.Processes(); err == nil {
		lin.Seed(procs)
		c.seeded = len(procs)
	}
	deliver := func(ev telemetry.Event) {
		lin.Enrich(&ev)
		c.events.Add(1)
		fn(ev)
	}

	if opts.Source != SourceCnProc {
		eb, err := ebpf.Start(ctx, ebpf.Options{DrainInterval: opts.DrainInterval, Host: opts.Host,
			Disable: opts.Disable, FileRate: opts.FileRate, FileBurst: opts.FileBurst,
			IncludePaths: opts.IncludePaths, ExcludePaths: opts.ExcludePaths, DNSPort: opts.DNSPort}, deliver)
		if err == nil {
			c.source, c.ebpf = telemetry.SourceEBPF, eb
			return c, nil
		}
		if opts.Source == SourceEBPF {
			return nil, fmt.Errorf("collect: %w", err)
		}
		c.fallback = err
	}
	cn, err := cnproc.Start(ctx, cnproc.Options{Host: opts.Host}, deliver)
	if err != nil {
		if c.fallback != nil {
			return nil, fmt.Errorf("collect: no source could start: %w", errors.Join(c.fallback, err))
		}
		return nil, fmt.Errorf("collect: %w", err)
	}
	c.source, c.cnproc = telemetry.SourceCnProc, cn
	return c, nil
}

// Source returns the source in use: telemetry.SourceEBPF or
// telemetry.SourceCnProc.
func (c *Collector) Source() telemetry.Source { return c.source }

// Fallback returns why eBPF was not used when Options.Source was auto and
// the process connector runs instead; nil otherwise.
func (c *Collector) Fallback() error { return c.fallback }

// Wait blocks until the collector has stopped (its context done and what
// was pending delivered) and returns the error that stopped it.
func (c *Collector) Wait() error {
	if c.ebpf != nil {
		return c.ebpf.Wait()
	}
	return c.cnproc.Wait()
}

// Stats returns the counts so far.
func (c *Collector) Stats() Stats {
	s := Stats{Source: c.source, Events: c.events.Load(), Seeded: c.seeded}
	if c.ebpf != nil {
		es := c.ebpf.Stats()
		s.Drops, s.Malformed = es.Drops, es.Malformed
		s.RateLimited = es.RateLimitedFile + es.RateLimitedNetwork + es.RateLimitedOther
		s.Filtered, s.NotCaptured = es.Filtered, es.NotCaptured
	} else {
		cs := c.cnproc.Stats()
		s.Lost, s.Partial, s.Malformed = cs.Lost, cs.Partial, cs.Malformed
		for _, capture := range ebpf.Captures {
			s.NotCaptured = append(s.NotCaptured, capture+": the process connector sees process starts and exits only")
		}
	}
	return s
}
