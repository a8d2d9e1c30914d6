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
	var res ScanResult
	r, _, err := importers.Open(path)
	if err != nil {
		return res, fmt.Errorf("quarry scan: %w", err)
	}
	defer r.Close()
	var emit func(detections.Hit)
	if onHit != nil {
		emit = func(h detections.Hit) { onHit(res.Events, h) }
	}
	// One event, its Fields storage reused from record to record: the engine
	// looks at each event once and keeps nothing of it.
	var ev telemetry.Event
	for {
		err := importers.NextInto(r, &ev)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return res, nil
			}
			var re *telemetry.RecordError
			if errors.As(err, &re) && re.Reason != "read failed" {
				res.BadRecords++
				continue
			}
			return res, fmt.Errorf("quarry scan: %w", err)
		}
		res.Hits += q.Engine.Match(&ev, emit)
		res.Events++
	}
}
