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
	opts   Options

	mu      sync.Mutex
	pending []telemetry.Event
	tags    []string
	hits    [][]pendingHit // per pending event
	stats   Stats

	stop chan struct{}
	done chan struct{}
}

type pendingHit struct {
	hit  detections.Hit
	tags bool // informational/low: a tag, not an alert
}

// New starts a pipeline storing into st; engine may be nil (store only).
func New(st *store.Store, engine *detections.Engine, opts Options) *Pipeline {
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = DefaultFlushInterval
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultBatchSize
	}
	p := &Pipeline{st: st, engine: engine, opts: opts, stop: make(chan struct{}), done: make(chan struct{})}
	go p.loop()
	return p
}

// Add matches ev and queues it, with its hits, for storing.
func (p *Pipeline) Add(ev telemetry.Event) {
	var hs []pendingHit
	var tags []string
	if p.engine != nil {
		p.engine.Match(&ev, func(h detections.Hit) {
			if TagsOnly(h.Rule) {
				for _, t := range h.Techniques {
					tags = append(tags, t.CurrentID())
				}
				return
			}
			hs = append(hs, pendingHit{hit: h})
		})
	}
	// Hits keep the event by pointer: point them at the queued copy.
	p.mu.Lock()
	p.pending = append(p.pending, ev)
	p.tags = append(p.tags, joinSorted(tags))
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

// Flush stores what is queued now.
func (p *Pipeline) Flush(ctx context.Context) error {
	p.mu.Lock()
	events, tags, hits := p.pending, p.tags, p.hits
	p.pending, p.tags, p.hits = nil, nil, nil
	p.mu.Unlock()
	if len(events) == 0 {
		return nil
	}
	first, err := p.st.AppendTagged(ctx, events, tags)
	if err != nil {
		p.fail(err)
		return err
	}
	var recs []store.HitRecord
	tagged := 0
	for i := range events {
		if tags[i] != "" {
			tagged++
		}
		for _, ph := range hits[i] {
			h := ph.hit
			h.Event = &events[i]
			recs = append(recs, Records(h, first+int64(i), p.opts.KB)...)
		}
	}
	nhits := 0
	for _, hs := range hits {
		nhits += len(hs)
	}
	if err := p.st.AppendHits(ctx, recs); err != nil {
		p.fail(err)
		return err
	}
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
	p.stats.Hits += uint64(nhits)
	p.stats.Tagged += uint64(tagged)
	p.mu.Unlock()
	return nil
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
	return p.Flush(context.Background())
}

// Detect matches events with engine and stores them in st as the pipeline
// does, synchronously: the events with the technique tags of informational
// and low hits, and the rows of medium and higher hits, which it returns.
// engine may be nil (store only).
func Detect(ctx context.Context, st *store.Store, engine *detections.Engine, kb *attack.KB, events []telemetry.Event) ([]store.HitRecord, error) {
	if len(events) == 0 {
		return nil, nil
	}
	tags := make([]string, len(events))
	hits := make([][]detections.Hit, len(events))
	if engine != nil {
		var ids []string
		for i := range events {
			ids = ids[:0]
			engine.Match(&events[i], func(h detections.Hit) {
				if TagsOnly(h.Rule) {
					for _, t := range h.Techniques {
						ids = append(ids, t.CurrentID())
					}
					return
				}
				hits[i] = append(hits[i], h)
			})
			tags[i] = joinSorted(ids)
		}
	}
	first, err := st.AppendTagged(ctx, events, tags)
	if err != nil {
		return nil, err
	}
	var recs []store.HitRecord
	for i := range events {
		for _, h := range hits[i] {
			h.Event = &events[i]
			recs = append(recs, Records(h, first+int64(i), kb)...)
		}
	}
	if err := st.AppendHits(ctx, recs); err != nil {
		return nil, err
	}
	return recs, nil
}
