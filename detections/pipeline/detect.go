package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/store"
)

// Detect matches events with engine and stores them in st as the pipeline
// does, synchronously: the events with the technique tags of informational
// and low hits, and the rows of medium and higher hits, which it returns.
// engine may be nil (store only). It runs no correlation rules: see
// Detector.
func Detect(ctx context.Context, st *store.Store, engine *detections.Engine, kb *attack.KB, events []telemetry.Event) ([]store.HitRecord, error) {
	d := &Detector{engine: engine, kb: kb}
	return d.Store(ctx, st, events)
}

// Detector matches batches of events with the detection rules and the
// correlation rules among them, and stores events, tags and hits as the
// live pipeline does (quarry import uses it). Batches must come in event
// order; Finish ends the input. It is not safe for concurrent use.
type Detector struct {
	engine *detections.Engine
	corr   *detections.Correlator // nil without correlation rules
	kb     *attack.KB
}

// NewDetector returns a detector of rules (detection and correlation
// rules); the errors are correlation rules left out (naming an unknown
// rule).
func NewDetector(rules []*detections.Rule, kb *attack.KB) (*Detector, []error) {
	d := &Detector{engine: detections.NewEngine(rules), kb: kb}
	corr, errs := detections.NewCorrelator(rules)
	if corr != nil && corr.Len() > 0 {
		d.corr = corr
	}
	return d, errs
}

// Correlator returns the correlator of the correlation rules among rules,
// nil when there are none (for Options.Correlation); the errors are
// correlation rules left out (naming an unknown rule).
func Correlator(rules []*detections.Rule) (*detections.Correlator, []error) {
	c, errs := detections.NewCorrelator(rules)
	if c.Len() == 0 {
		return nil, errs
	}
	return c, errs
}

// Store matches events, stores them with their tags and returns the stored
// hit rows (correlation hits included).
func (d *Detector) Store(ctx context.Context, st *store.Store, events []telemetry.Event) ([]store.HitRecord, error) {
	if len(events) == 0 {
		return nil, nil
	}
	hits := make([][]detections.Hit, len(events))
	if d.engine != nil {
		for i := range events {
			d.engine.Match(&events[i], func(h detections.Hit) { hits[i] = append(hits[i], h) })
		}
	}
	res, err := d.storeMatched(ctx, st, events, hits)
	return res.recs, err
}

// batchResult is what storing a batch did.
type batchResult struct {
	recs           []store.HitRecord
	alerts, tagged int // hits stored as rows (correlation hits included), events tagged
}

// storeMatched stores events whose hits the engine found (hits[i] are
// events[i]'s; their Event points into events).
func (d *Detector) storeMatched(ctx context.Context, st *store.Store, events []telemetry.Event, hits [][]detections.Hit) (batchResult, error) {
	var res batchResult
	tags := make([]string, len(events))
	var ids []string
	for i := range events {
		ids = ids[:0]
		for _, h := range hits[i] {
			if TagsOnly(h.Rule) && d.reports(h.Rule) {
				for _, t := range h.Techniques {
					ids = append(ids, t.CurrentID())
				}
			}
		}
		tags[i] = joinSorted(ids)
		if tags[i] != "" {
			res.tagged++
		}
	}
	first, err := st.AppendTagged(ctx, events, tags)
	if err != nil {
		return res, err
	}
	var recs []store.HitRecord
	corrTags := map[int64][]string{}
	emit := d.emitter(&recs, corrTags)
	for i := range events {
		eid := first + int64(i)
		for _, h := range hits[i] {
			h.Event = &events[i]
			if !TagsOnly(h.Rule) && d.reports(h.Rule) {
				recs = append(recs, Records(h, eid, d.kb)...)
			}
			if d.corr != nil {
				d.corr.Observe(h, eid, emit)
			}
		}
		if d.corr != nil {
			d.corr.Advance(events[i].Time, emit)
		}
	}
	res.recs = recs
	res.alerts = countHits(recs)
	return res, d.save(ctx, st, recs, corrTags)
}

// Advance closes the correlation windows that end before now and stores
// the hits of those decided at close (live: windows close with time, not
// only with the next event).
func (d *Detector) Advance(ctx context.Context, st *store.Store, now time.Time) ([]store.HitRecord, error) {
	if d.corr == nil {
		return nil, nil
	}
	var recs []store.HitRecord
	tags := map[int64][]string{}
	d.corr.Advance(now, d.emitter(&recs, tags))
	return recs, d.save(ctx, st, recs, tags)
}

// Finish ends the input: correlation windows still open are closed, and
// the hits of those decided at close are stored and returned.
func (d *Detector) Finish(ctx context.Context, st *store.Store) ([]store.HitRecord, error) {
	if d.corr == nil {
		return nil, nil
	}
	var recs []store.HitRecord
	tags := map[int64][]string{}
	d.corr.Flush(d.emitter(&recs, tags))
	return recs, d.save(ctx, st, recs, tags)
}

func (d *Detector) reports(r *detections.Rule) bool {
	return d.corr == nil || d.corr.Reports(r)
}

// emitter turns correlation hits into hit rows (or tags, for informational
// and low correlation rules) on the event ref (its eid).
func (d *Detector) emitter(recs *[]store.HitRecord, tags map[int64][]string) detections.Emit {
	return func(h detections.Hit, ref int64) {
		if TagsOnly(h.Rule) {
			for _, t := range h.Techniques {
				tags[ref] = append(tags[ref], t.CurrentID())
			}
			return
		}
		if h.Event == nil {
			return
		}
		*recs = append(*recs, Records(h, ref, d.kb)...)
	}
}

func (d *Detector) save(ctx context.Context, st *store.Store, recs []store.HitRecord, tags map[int64][]string) error {
	if err := st.AppendHits(ctx, recs); err != nil {
		return err
	}
	if err := st.TagEvents(ctx, tags); err != nil {
		return fmt.Errorf("tag events: %w", err)
	}
	return nil
}
