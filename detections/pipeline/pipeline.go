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
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/detections/incidents"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/store"
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
	// OnError receives storage errors (the pipeline keeps going).
	OnError func(error)
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
}

// Stats counts what a Pipeline did.
type Stats struct {
	Events, Stored, Hits, Tagged, Errors uint64
}

// Pipeline matches events as they arrive and stores them with their hits.
// Add may be called from one goroutine at a time; Close flushes.
type Pipeline struct {
	st     *store.Store
	engine *detections.Engine
	det    *Detector
	opts   Options

	mu      sync.Mutex
	pending []telemetry.Event
	hits    [][]detections.Hit // per pending event
	stats   Stats

	flushMu sync.Mutex // one flush at a time: the correlator is not shared

	stop chan struct{}
	done chan struct{}
}

// New starts a pipeline storing into st; engine may be nil (store only).
func New(st *store.Store, engine *detections.Engine, opts Options) *Pipeline {
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = DefaultFlushInterval
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultBatchSize
	}
	p := &Pipeline{st: st, engine: engine, opts: opts, stop: make(chan struct{}), done: make(chan struct{}),
		det: &Detector{engine: engine, kb: opts.KB, corr: opts.Correlation}}
	go p.loop()
	return p
}

// Add matches ev and queues it, with its hits, for storing.
func (p *Pipeline) Add(ev telemetry.Event) {
	var hs []detections.Hit
	if p.engine != nil {
		p.engine.Match(&ev, func(h detections.Hit) { hs = append(hs, h) })
	}
	// Hits keep the event by pointer: Flush points them at the queued copy.
	p.mu.Lock()
	p.pending = append(p.pending, ev)
	p.hits = append(p.hits, hs)
	p.stats.Events++
	full := len(p.pending) >= p.opts.BatchSize
	p.mu.Unlock()
	if full {
		p.Flush(context.Background())
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
	p.mu.Lock()
	events, hits := p.pending, p.hits
	p.pending, p.hits = nil, nil
	p.mu.Unlock()
	var res batchResult
	if len(events) > 0 {
		var err error
		if res, err = p.det.storeMatched(ctx, p.st, events, hits); err != nil {
			p.fail(err)
			return err
		}
	}
	var more []store.HitRecord
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
	recs := append(res.recs, more...)
	if !p.opts.NoIncidents && len(recs) > 0 {
		var io incidents.Options
		if p.opts.Incidents != nil {
			io = *p.opts.Incidents
		}
		if _, err := incidents.RefreshHits(ctx, p.st, recs, io); err != nil {
			p.fail(err)
			return err
		}
	}
	p.mu.Lock()
	p.stats.Stored += uint64(len(events))
	p.stats.Hits += uint64(res.alerts + countHits(more))
	p.stats.Tagged += uint64(res.tagged)
	p.mu.Unlock()
	return nil
}

// countHits counts the distinct hits among rows.
func countHits(recs []store.HitRecord) int {
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
		case <-t.C:
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

// Close stops the timer and stores what is still queued.
func (p *Pipeline) Close() error {
	select {
	case <-p.stop:
		return errors.New("pipeline already closed")
	default:
	}
	close(p.stop)
	<-p.done
	return p.flush(context.Background(), true)
}
