//go:build linux

package collect

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/audit"
	"github.com/quarry-sec/quarry/telemetry/cnproc"
	"github.com/quarry-sec/quarry/telemetry/ebpf"
	"github.com/quarry-sec/quarry/telemetry/host"
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

	// audit is the activity fallback, serving auditCaptures; auditErr is
	// why it could not start, for the captures it would have served.
	audit         *audit.Collector
	auditCaptures []string
	auditErr      error
	stop          context.CancelFunc
}

// Start seeds lineage from /proc, starts the chosen source and calls fn,
// from one goroutine at a time, for every exec and exit event, enriched
// with lineage, and every activity event, until ctx is done.
func Start(ctx context.Context, opts Options, fn func(telemetry.Event)) (*Collector, error) {
	if fn == nil {
		return nil, errors.New("collect: nil callback")
	}
	if err := opts.check(); err != nil {
		return nil, err
	}
	lin := lineage.New(opts.Lineage)
	ctx, stop := context.WithCancel(ctx)
	c := &Collector{stop: stop}
	if procs, err := cnproc.Processes(); err == nil {
		lin.Seed(procs)
		c.seeded = len(procs)
	}
	users := host.NewUsers("")
	var mu sync.Mutex // the process source and the audit fallback both deliver
	deliver := func(ev telemetry.Event) {
		mu.Lock()
		defer mu.Unlock()
		lin.Enrich(&ev)
		if ev.Username == "" {
			ev.Username = users.Name(effectiveUID(&ev))
		}
		c.events.Add(1)
		fn(ev)
	}
	if err := c.startProcesses(ctx, opts, deliver); err != nil {
		stop()
		return nil, err
	}
	if err := c.startAudit(ctx, opts, deliver); err != nil {
		stop()
		c.Wait()
		return nil, err
	}
	return c, nil
}

// startProcesses starts eBPF or the process connector.
func (c *Collector) startProcesses(ctx context.Context, opts Options, deliver func(telemetry.Event)) error {
	if opts.Source != SourceCnProc {
		disable := opts.Disable
		if opts.Activity == ActivityAudit {
			disable = append(append([]string(nil), disable...), audit.Captures...)
		}
		eb, err := ebpf.Start(ctx, ebpf.Options{DrainInterval: opts.DrainInterval, Host: opts.Host,
			Disable: disable, FileRate: opts.FileRate, FileBurst: opts.FileBurst,
			IncludePaths: opts.IncludePaths, ExcludePaths: opts.ExcludePaths, DNSPort: opts.DNSPort}, deliver)
		if err == nil {
			c.source, c.ebpf = telemetry.SourceEBPF, eb
			return nil
		}
		if opts.Source == SourceEBPF {
			return fmt.Errorf("collect: %w", err)
		}
		c.fallback = err
	}
	cn, err := cnproc.Start(ctx, cnproc.Options{Host: opts.Host}, deliver)
	if err != nil {
		if c.fallback != nil {
			return fmt.Errorf("collect: no source could start: %w", errors.Join(c.fallback, err))
		}
		return fmt.Errorf("collect: %w", err)
	}
	c.source, c.cnproc = telemetry.SourceCnProc, cn
	return nil
}

// startAudit starts the audit fallback for the captures it serves that
// eBPF does not capture (all of them when forced), unless disabled.
func (c *Collector) startAudit(ctx context.Context, opts Options, deliver func(telemetry.Event)) error {
	if opts.Activity == ActivityEBPF {
		return nil
	}
	var missing []string
	for _, capture := range audit.Captures {
		if slices.Contains(opts.Disable, capture) {
			continue
		}
		if opts.Activity == ActivityAudit || c.ebpf == nil || c.ebpfMissing(capture) {
			missing = append(missing, capture)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	au, err := audit.Start(ctx, audit.Options{Host: opts.Host, Captures: missing}, deliver)
	if err != nil {
		if opts.Activity == ActivityAudit {
			return fmt.Errorf("collect: %w", err)
		}
		c.auditErr = err
		return nil
	}
	c.audit, c.auditCaptures = au, missing
	return nil
}

// ebpfMissing reports whether eBPF lists capture as not captured.
func (c *Collector) ebpfMissing(capture string) bool {
	for _, nc := range c.ebpf.Stats().NotCaptured {
		if name, _, _ := strings.Cut(nc, ":"); name == capture {
			return true
		}
	}
	return false
}

// Source returns the source in use: telemetry.SourceEBPF or
// telemetry.SourceCnProc.
func (c *Collector) Source() telemetry.Source { return c.source }

// Fallback returns why eBPF was not used when Options.Source was auto and
// the process connector runs instead; nil otherwise.
func (c *Collector) Fallback() error { return c.fallback }

// AuditError returns why the audit fallback could not start for the
// activity eBPF does not capture (another audit daemon runs, audit is
// locked…); nil when it runs or was not needed.
func (c *Collector) AuditError() error { return c.auditErr }

// Wait blocks until the collector has stopped (its context done, what was
// pending delivered and the audit rules removed) and returns the error that
// stopped it. The process source stopping on its own (failing) stops the
// audit fallback too.
func (c *Collector) Wait() error {
	var errs []error
	if c.ebpf != nil {
		errs = append(errs, c.ebpf.Wait())
	} else if c.cnproc != nil {
		errs = append(errs, c.cnproc.Wait())
	}
	c.stop()
	if c.audit != nil {
		errs = append(errs, c.audit.Wait())
	}
	return errors.Join(errs...)
}

// Stats returns the counts so far.
func (c *Collector) Stats() Stats {
	s := Stats{Source: c.source, Events: c.events.Load(), Seeded: c.seeded}
	if c.ebpf != nil {
		es := c.ebpf.Stats()
		s.Drops, s.Malformed = es.Drops, es.Malformed
		s.RateLimited = es.RateLimitedFile + es.RateLimitedNetwork + es.RateLimitedOther
		s.Filtered = es.Filtered
		for _, nc := range es.NotCaptured {
			if name, _, _ := strings.Cut(nc, ":"); !slices.Contains(c.auditCaptures, name) {
				s.NotCaptured = append(s.NotCaptured, c.withAuditReason(name, nc))
			}
		}
	} else {
		cs := c.cnproc.Stats()
		s.Lost, s.Partial, s.Malformed = cs.Lost, cs.Partial, cs.Malformed
		for _, capture := range ebpf.Captures {
			if !slices.Contains(c.auditCaptures, capture) {
				s.NotCaptured = append(s.NotCaptured, c.withAuditReason(capture, capture+": the process connector sees process starts and exits only"))
			}
		}
	}
	if c.audit != nil {
		s.Audit, s.AuditCaptures = c.audit.Stats(), c.auditCaptures
		s.Drops += s.Audit.Lost + s.Audit.QueueFull + s.Audit.Overruns
		s.Malformed += s.Audit.Malformed
	}
	return s
}

// withAuditReason adds to a not-captured note why the audit fallback does
// not serve that capture either, when it could not start.
func (c *Collector) withAuditReason(capture, note string) string {
	if c.auditErr != nil && slices.Contains(audit.Captures, capture) {
		msg, _, _ := strings.Cut(c.auditErr.Error(), "\n")
		return note + "; audit fallback: " + msg
	}
	return note
}

// effectiveUID is the uid a process acts as: its effective uid, else its
// real one (a setuid program run by a user acts as the file's owner).
func effectiveUID(ev *telemetry.Event) int64 {
	if ev.EUID >= 0 {
		return ev.EUID
	}
	return ev.UID
}
