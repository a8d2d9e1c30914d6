package pipeline

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/detections/intel"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

// Detect matches events with engine and stores them in st as the pipeline
// does, synchronously: the events with the technique tags of informational
// and low hits, and the rows of medium and higher hits, which it returns.
// engine may be nil (store only). It runs no correlation rules: see
// Detector.
func Detect(ctx context.Context, st *eventstore.Store, engine *detections.Engine, kb *attack.KB, events []telemetry.Event) ([]telemetry.Hit, error) {
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
	intel  *intel.Live // nil: no indicators matched
	iocs   int         // indicator hits so far

	// perProcess caps the hits of one rule on one process (0:
	// DefaultHitsPerProcess, negative: no cap); raised counts them, by
	// rule and process, capped how many matches the cap made tags.
	perProcess int
	raised     map[string]int
	capped     int

	// corrHits and corrTags are correlation output not stored yet (a
	// failed save): stored with the next batch's or at Finish, never
	// found again by feeding the correlator the batch a second time.
	corrHits []telemetry.Hit
	corrTags map[int64][]string
}

// DefaultHitsPerProcess is how many hits one rule raises on one process
// before its further matches there only tag their events (as a low rule's
// do): a noisy program matching a rule on every connection or file must
// not bury every other alert, nor cost a store write and an incident
// regroup per event.
const DefaultHitsPerProcess = 100

// maxRaised bounds the rule-and-process counts kept; past it they start
// again from zero.
const maxRaised = 200_000

// SetHitsPerProcess sets how many hits one rule raises on one process
// before its further matches there only tag their events; negative: no
// cap.
func (d *Detector) SetHitsPerProcess(n int) { d.perProcess = n }

// Capped is how many matches the per-process cap turned into tags so far.
func (d *Detector) Capped() int { return d.capped }

// overCap says whether a hit of rule on ev would pass the per-process cap,
// counting it in batch when it does not.
func (d *Detector) overCap(rule string, ev *telemetry.Event, batch map[string]int) bool {
	limit := d.perProcess
	if limit == 0 {
		limit = DefaultHitsPerProcess
	}
	if limit < 0 {
		return false
	}
	proc := ev.ProcessKey
	if proc == "" {
		proc = ev.Host + "/" + strconv.FormatInt(ev.PID, 10)
	}
	key := rule + "\x00" + proc
	if d.raised[key]+batch[key] >= limit {
		return true
	}
	batch[key]++
	return false
}

// SetIntel makes the detector match each stored batch against the threat
// intelligence indicators of lv (ioc_hits), after the batch is stored.
func (d *Detector) SetIntel(lv *intel.Live) { d.intel = lv }

// IOCHits is how many indicator hits the detector found so far.
func (d *Detector) IOCHits() int { return d.iocs }

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

// Store stores events with their tags and hits in one transaction
// (eventstore.StoreBatch: each event gets its process identity first, so rules
// see a start record's filled-in parent) and returns the hit rows of the
// batch (correlation hits included). Records stored before are not stored
// again and their hits not twice.
func (d *Detector) Store(ctx context.Context, st *eventstore.Store, events []telemetry.Event) ([]telemetry.Hit, error) {
	res, err := d.storeBatch(ctx, st, events)
	return res.recs, err
}

// StoreBatch is Store that also says what storing did (events new, merged
// into another source's row of the same process, already stored). The
// error is the batch's: correlation hits that could not be stored once the
// batch was are kept and stored with the next batch, or by Finish, which
// reports the failure if it lasts.
func (d *Detector) StoreBatch(ctx context.Context, st *eventstore.Store, events []telemetry.Event) (eventstore.BatchResult, []telemetry.Hit, error) {
	res, err := d.storeBatch(ctx, st, events)
	return res.batch, res.recs, err
}

// batchResult is what storing a batch did.
type batchResult struct {
	recs           []telemetry.Hit
	alerts, tagged int // hits (correlation hits included), events tagged
	capped         int // matches the per-process cap made tags
	// corrErr is why the correlation hits were not stored (kept for the
	// next save); the batch itself is stored.
	corrErr error
	batch   eventstore.BatchResult
}

// storeBatch matches rules and indicators and stores a batch with its tags,
// hits and IoC sightings in one transaction, then feeds the correlator
// (whose hits are stored after, in a second one: its windows are state a
// retried batch must not feed twice).
func (d *Detector) storeBatch(ctx context.Context, st *eventstore.Store, events []telemetry.Event) (batchResult, error) {
	var res batchResult
	if len(events) == 0 {
		return res, nil
	}
	if d.intel != nil {
		// Indicators added or removed by another process since the last
		// batch take effect now, before the batch's transaction.
		if err := d.intel.Refresh(ctx); err != nil {
			return res, fmt.Errorf("match indicators: %w", err)
		}
	}
	var hits [][]detections.Hit
	var sightings int
	var raised map[string]int // this batch's hits by rule and process
	detect := func(evs []telemetry.Event, stored []eventstore.Stored) (eventstore.Detected, error) {
		// Pure: it may run again when the batch is retried (what it
		// counts is kept only once the batch is stored).
		hits = make([][]detections.Hit, len(evs))
		tags := make([]string, len(evs))
		var recs []telemetry.Hit
		var ids []string
		res.tagged, res.capped = 0, 0
		raised = map[string]int{}
		for i := range evs {
			if d.engine == nil {
				continue
			}
			d.engine.Match(&evs[i], func(h detections.Hit) { hits[i] = append(hits[i], h) })
			ids = ids[:0]
			for _, h := range hits[i] {
				h.Event = &evs[i]
				switch {
				case !d.reports(h.Rule):
				case TagsOnly(h.Rule):
					for _, t := range h.Techniques {
						ids = append(ids, t.CurrentID())
					}
				case d.overCap(h.Rule.ID, &evs[i], raised):
					res.capped++
					for _, t := range h.Techniques {
						ids = append(ids, t.CurrentID())
					}
				default:
					recs = append(recs, Records(h, stored[i].EID, d.kb)...)
				}
			}
			tags[i] = joinSorted(ids)
			if tags[i] != "" {
				res.tagged++
			}
		}
		res.recs = recs
		found := eventstore.Detected{Tags: tags, Hits: recs}
		if d.intel != nil {
			// Indicators, matched once each event has its row (their
			// hits name it), are stored in the same transaction. Their
			// hit rows take the IoA hits' path (kind ioc): incidents,
			// the process tree and the fleet's detection pack see them.
			eids := make([]int64, len(evs))
			for i := range stored {
				eids[i] = stored[i].EID
			}
			ss, iocRecs := d.intel.Match(evs, eids)
			found.Sightings, sightings = ss, len(ss)
			found.Hits = append(recs[:len(recs):len(recs)], iocRecs...)
		}
		return found, nil
	}
	b, err := st.StoreBatch(ctx, events, detect)
	if err != nil {
		return batchResult{}, err
	}
	res.batch = b
	d.iocs += sightings
	d.capped += res.capped
	if d.raised == nil || len(d.raised)+len(raised) > maxRaised {
		d.raised = make(map[string]int, len(raised))
	}
	for k, n := range raised {
		d.raised[k] += n
	}
	if d.corr != nil {
		var more []telemetry.Hit
		corrTags := map[int64][]string{}
		emit := d.emitter(&more, corrTags)
		for i := range events {
			for _, h := range hits[i] {
				h.Event = &events[i]
				d.corr.Observe(h, b.Stored[i].EID, emit)
			}
			d.corr.Advance(events[i].Time, emit)
		}
		res.recs = append(res.recs, more...)
		// The batch is stored and the correlator has seen it: a failure
		// here must not send the batch again (the correlator would count
		// its hits twice). What is not stored waits for the next save.
		res.corrErr = d.save(ctx, st, more, corrTags)
	}
	res.alerts = countHits(res.recs)
	return res, nil
}

// Advance closes the correlation windows that end before now and stores
// the hits of those decided at close (live: windows close with time, not
// only with the next event).
func (d *Detector) Advance(ctx context.Context, st *eventstore.Store, now time.Time) ([]telemetry.Hit, error) {
	if d.corr == nil {
		return nil, nil
	}
	var recs []telemetry.Hit
	tags := map[int64][]string{}
	d.corr.Advance(now, d.emitter(&recs, tags))
	return recs, d.save(ctx, st, recs, tags)
}

// Finish ends the input: correlation windows still open are closed, and
// the hits of those decided at close are stored and returned.
func (d *Detector) Finish(ctx context.Context, st *eventstore.Store) ([]telemetry.Hit, error) {
	if d.corr == nil {
		return nil, nil
	}
	var recs []telemetry.Hit
	tags := map[int64][]string{}
	d.corr.Flush(d.emitter(&recs, tags))
	return recs, d.save(ctx, st, recs, tags)
}

func (d *Detector) reports(r *detections.Rule) bool {
	return d.corr == nil || d.corr.Reports(r)
}

// emitter turns correlation hits into hit rows (or tags, for informational
// and low correlation rules) on the event ref (its eid).
func (d *Detector) emitter(recs *[]telemetry.Hit, tags map[int64][]string) detections.Emit {
	return func(h detections.Hit, ref int64) { addHit(d.kb, recs, tags, h, ref) }
}

// addHit adds h, a hit on the stored event eid, to what is to be stored as
// detection stores hits: rows (Records) for a medium or higher rule, or
// technique tags on the event for an informational or low one (none when
// the event is not stored, eid 0).
func addHit(kb *attack.KB, recs *[]telemetry.Hit, tags map[int64][]string, h detections.Hit, eid int64) {
	if TagsOnly(h.Rule) {
		if eid == 0 {
			return
		}
		for _, t := range h.Techniques {
			tags[eid] = append(tags[eid], t.CurrentID())
		}
		return
	}
	if h.Event == nil {
		return
	}
	*recs = append(*recs, Records(h, eid, kb)...)
}

func (d *Detector) save(ctx context.Context, st *eventstore.Store, recs []telemetry.Hit, tags map[int64][]string) error {
	d.corrHits = append(d.corrHits, recs...)
	for eid, ts := range tags {
		if d.corrTags == nil {
			d.corrTags = map[int64][]string{}
		}
		d.corrTags[eid] = append(d.corrTags[eid], ts...)
	}
	if len(d.corrHits) == 0 && len(d.corrTags) == 0 {
		return nil
	}
	if _, err := st.SaveHits(ctx, d.corrHits, d.corrTags); err != nil {
		return fmt.Errorf("store %d correlation hit rows (kept for the next attempt): %w", len(d.corrHits), err)
	}
	d.corrHits, d.corrTags = nil, nil
	return nil
}
