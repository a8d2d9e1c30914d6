// Package pipeline runs detection on a live stream of events and keeps both
// in the event store: events in batches, the hits of medium and higher rules
// as ioa_hits rows, and the techniques of informational and low rules as
// tags on the events themselves (process_events.techniques), so analysts can
// hunt by technique where no alert was raised. It is the one place a
// detections.Hit becomes stored hit rows.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/detections/incidents"
	"github.com/quarry-sec/quarry/detections/intel"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

// Defaults for Options.
const (
	DefaultFlushInterval = 100 * time.Millisecond
	DefaultBatchSize     = 2000
)

// Options tune a Pipeline.
type Options struct {
	// FlushInterval bounds how long an event or hit waits before it is
	// stored (default 100 ms: events and hits are queryable well within a second).
	FlushInterval time.Duration
	// BatchSize stores a batch early once it holds this many events.
	BatchSize int
	// KB narrows each hit row's tactic to its technique's tactics.
	KB *attack.KB
	// OnError receives storage errors. A batch that fails to store is kept
	// and retried with backoff (from FlushInterval doubling up to
	// MaxRetryInterval); while MaxPending events wait, Add blocks.
	OnError func(error)
	// MaxPending bounds the events waiting to be stored (default 16 ×
	// BatchSize): past it Add blocks until a batch is stored.
	MaxPending int
	// MaxRetryInterval bounds the wait between attempts to store a batch
	// that failed (default 5 s).
	MaxRetryInterval time.Duration
	// Incidents tunes incident grouping: after each stored batch of hits the
	// incidents around them are regrouped (detections/incidents), so
	// incidents update as hits arrive. nil uses the defaults.
	Incidents *incidents.Options
	// NoIncidents leaves incidents alone.
	NoIncidents bool
	// Correlation, when set, evaluates its correlation rules over the hits
	// (detections.NewCorrelator over the same rules as the engine): their
	// hits are stored like any other, with rule_source correlation, and
	// windows decided at close are closed as time passes.
	Correlation *detections.Correlator
	// Intel, when set, matches every stored event against the threat
	// intelligence indicators (ioc_hits), as each batch is stored.
	Intel *intel.Live
	// HitsPerProcess is how many hits one rule raises on one process
	// before its further matches there only tag their events (0:
	// DefaultHitsPerProcess; negative: no cap).
	HitsPerProcess int
}

// Stats counts what a Pipeline did.
type Stats struct {
	// Events were added; Stored were stored (Merged of them into the row of
	// the same process's start from another source, Already of them stored
	// before); Errors counts failed attempts to store (retried). Capped
	// counts the matches past the per-process cap, which only tag.
	Events, Stored, Merged, Already, Hits, Tagged, Capped, Errors uint64
}

// Pipeline matches events and stores them with their hits, a batch at a
// time (each batch one transaction). Add may be called from one goroutine
// at a time; Close flushes.
type Pipeline struct {
	st     *eventstore.Store
	engine *detections.Engine
	det    *Detector
	opts   Options

	mu      sync.Mutex
	room    *sync.Cond // signalled when pending shrinks or the pipeline closes
	pending []telemetry.Event
	stats   Stats
	retryAt time.Time     // after a failed store, no attempt before this
	backoff time.Duration // the current wait after a failure
	closed  bool

	flushMu sync.Mutex // one flush at a time: the correlator is not shared

	kick chan struct{} // a full batch waits (Add)
	stop chan struct{}
	done chan struct{}
}

// New starts a pipeline storing into st; engine may be nil (store only).
func New(st *eventstore.Store, engine *detections.Engine, opts Options) *Pipeline {
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = DefaultFlushInterval
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultBatchSize
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = 16 * opts.BatchSize
	}
	if opts.MaxRetryInterval <= 0 {
		opts.MaxRetryInterval = 5 * time.Second
	}
	p := &Pipeline{st: st, engine: engine, opts: opts, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		det: &Detector{engine: engine, kb: opts.KB, corr: opts.Correlation, intel: opts.Intel, perProcess: opts.HitsPerProcess}}
	p.room = sync.NewCond(&p.mu)
	go p.loop()
	return p
}

// Add queues ev for matching and storing; a full batch is stored by the
// pipeline's own goroutine, so Add returns at once unless MaxPending events
// wait (the store is failing or behind), when it blocks.
func (p *Pipeline) Add(ev telemetry.Event) {
	p.mu.Lock()
	for len(p.pending) >= p.opts.MaxPending && !p.closed {
		p.room.Wait()
	}
	p.pending = append(p.pending, ev)
	p.stats.Events++
	full := len(p.pending) >= p.opts.BatchSize && time.Now().After(p.retryAt)
	p.mu.Unlock()
	if full {
		// The pipeline's goroutine stores it: the caller (a collector
		// draining its ring buffer) goes on reading meanwhile.
		select {
		case p.kick <- struct{}{}:
		default: // a flush is asked for already
		}
	}
}

// TagsOnly reports whether a rule only tags events (informational and low
// rules) instead of raising an alert.
func TagsOnly(r *detections.Rule) bool {
	return r.Severity == detections.SeverityInformational || r.Severity == detections.SeverityLow
}

func joinSorted(ids []string) string {
	if len(ids) == 0 {
		return ""
	}
	sort.Strings(ids)
	out := ids[:1]
	for _, id := range ids[1:] {
		if id != out[len(out)-1] {
			out = append(out, id)
		}
	}
	return strings.Join(out, ",")
}

// Flush stores what is queued now, and the hits of correlation windows
// that closed meanwhile.
func (p *Pipeline) Flush(ctx context.Context) error {
	return p.flush(ctx, false)
}

func (p *Pipeline) flush(ctx context.Context, final bool) error {
	p.flushMu.Lock()
	defer p.flushMu.Unlock()
	for {
		p.mu.Lock()
		n := min(len(p.pending), p.opts.BatchSize)
		// A copy: storing fills events in (their process keys) while Add
		// appends to pending, which may copy the same backing array.
		events := append([]telemetry.Event(nil), p.pending[:n]...)
		p.mu.Unlock()
		if n == 0 {
			break
		}
		res, err := p.det.storeBatch(ctx, p.st, events)
		if err != nil {
			// The batch stays queued and is tried again after a backoff.
			p.mu.Lock()
			p.backoff = min(max(2*p.backoff, p.opts.FlushInterval), p.opts.MaxRetryInterval)
			p.retryAt = time.Now().Add(p.backoff)
			p.mu.Unlock()
			p.fail(err)
			return err
		}
		p.mu.Lock()
		p.pending = append([]telemetry.Event(nil), p.pending[n:]...)
		p.backoff, p.retryAt = 0, time.Time{}
		p.stats.Stored += uint64(res.batch.New + res.batch.Merged)
		p.stats.Merged += uint64(res.batch.Merged)
		p.stats.Already += uint64(res.batch.Already)
		p.stats.Hits += uint64(res.alerts)
		p.stats.Tagged += uint64(res.tagged)
		p.stats.Capped += uint64(res.capped)
		p.room.Broadcast()
		p.mu.Unlock()
		if res.corrErr != nil {
			p.fail(res.corrErr) // the batch is stored; its correlation hits wait for the next save
		}
	}
	var more []telemetry.Hit
	var err error
	if final {
		more, err = p.det.Finish(ctx, p.st)
	} else {
		more, err = p.det.Advance(ctx, p.st, time.Now())
	}
	if err != nil {
		p.fail(err)
		return err
	}
	p.mu.Lock()
	p.stats.Hits += uint64(countHits(more))
	p.mu.Unlock()
	if !p.opts.NoIncidents {
		var io incidents.Options
		if p.opts.Incidents != nil {
			io = *p.opts.Incidents
		}
		if _, err := incidents.RefreshPending(ctx, p.st, io); err != nil {
			p.fail(err)
			return err
		}
	}
	return nil
}

// countHits counts the distinct hits among rows.
func countHits(recs []telemetry.Hit) int {
	n := 0
	for i := range recs {
		if i == 0 || recs[i].HitID != recs[i-1].HitID {
			n++
		}
	}
	return n
}

func (p *Pipeline) fail(err error) {
	p.mu.Lock()
	p.stats.Errors++
	p.mu.Unlock()
	if p.opts.OnError != nil {
		p.opts.OnError(err)
	}
}

func (p *Pipeline) loop() {
	defer close(p.done)
	t := time.NewTicker(p.opts.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-p.kick: // a full batch
		case <-t.C:
		}
		p.mu.Lock()
		wait := time.Now().Before(p.retryAt)
		p.mu.Unlock()
		if !wait {
			p.Flush(context.Background())
		}
	}
}

// Stats returns the counts so far.
func (p *Pipeline) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// closeAttempts is how many times Close tries to store what is queued.
const closeAttempts = 5

// Close stops the timer and stores what is still queued, retrying a failing
// store a few times; what it could not store is reported in the error.
func (p *Pipeline) Close() error {
	select {
	case <-p.stop:
		return errors.New("pipeline already closed")
	default:
	}
	close(p.stop)
	<-p.done
	var err error
	for i := range closeAttempts {
		if err = p.flush(context.Background(), true); err == nil {
			break
		}
		if i < closeAttempts-1 {
			p.mu.Lock()
			wait := time.Until(p.retryAt)
			p.mu.Unlock()
			time.Sleep(max(wait, 0))
		}
	}
	p.mu.Lock()
	p.closed = true
	left := len(p.pending)
	p.room.Broadcast()
	p.mu.Unlock()
	if err != nil {
		return fmt.Errorf("pipeline: %d event(s) not stored: %w", left, err)
	}
	return nil
}
