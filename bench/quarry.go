package bench

import (
	"errors"
	"fmt"
	"io"

	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/importers"
)

// Quarry is Quarry's engine with a rule set loaded.
type Quarry struct {
	Engine     *detections.Engine
	Rules      []*detections.Rule
	LoadErrors []*detections.LoadError
}

// LoadQuarry loads the rule files and builds the matcher for sample's log
// source ahead of time, so that measuring the heap after it counts the
// whole compiled rule set.
func LoadQuarry(files []string, sample *telemetry.Event) (*Quarry, error) {
	res, err := detections.LoadFiles(files, detections.Options{})
	if err != nil {
		return nil, fmt.Errorf("quarry: %w", err)
	}
	q := &Quarry{Engine: detections.NewEngine(res.Rules), Rules: res.Rules, LoadErrors: res.Errors}
	if sample != nil {
		q.Engine.Prepare(sample)
	}
	return q, nil
}

// FirstEvent reads the first event of a recording.
func FirstEvent(path string) (*telemetry.Event, error) {
	r, _, err := importers.Open(path)
	if err != nil {
		return nil, fmt.Errorf("first event: %w", err)
	}
	defer r.Close()
	ev, err := r.Next()
	if err != nil {
		return nil, fmt.Errorf("first event of %s: %w", path, err)
	}
	return &ev, nil
}

// ScanResult is what a pass over a recording found.
type ScanResult struct {
	Events, Hits, BadRecords int
}

// Scan reads a recording through Quarry's importer (NextInto: one event
// reused) and matches every event, calling onHit (when not nil) for each hit with the event's ordinal.
func (q *Quarry) Scan(path string, onHit func(event int, h detections.Hit)) (ScanResult, error) {
	var emit func(detections.Hit)
	var res ScanResult
	if onHit != nil {
		emit = func(h detections.Hit) { onHit(res.Events, h) }
	}
	err := eachEvent(path, &res, func(ev *telemetry.Event) { res.Hits += q.Engine.Match(ev, emit) })
	return res, err
}

// eachEvent reads a recording through Quarry's importer into one reused
// event (NextInto: the engine looks at each event once and keeps nothing of
// it), calls fn with each, and counts events and malformed records in res.
func eachEvent(path string, res *ScanResult, fn func(ev *telemetry.Event)) error {
	r, _, err := importers.Open(path)
	if err != nil {
		return fmt.Errorf("quarry scan: %w", err)
	}
	defer r.Close()
	var ev telemetry.Event
	for {
		err := importers.NextInto(r, &ev)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			var re *telemetry.RecordError
			if errors.As(err, &re) && re.Reason != "read failed" {
				res.BadRecords++
				continue
			}
			return fmt.Errorf("quarry scan: %w", err)
		}
		fn(&ev)
		res.Events++
	}
}
