package bench

import (
	"errors"
	"fmt"
	"io"
	"runtime"

	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/detections/rules"
	"github.com/quarry-sec/quarry/detections/ruleset"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/importers"
)

// WithBuiltinPack adds Quarry's builtin pack (its IoA rules, correlation
// rules and their building blocks) to the loaded rules, and returns the
// Correlator of its correlation rules.
func (q *Quarry) WithBuiltinPack(sample *telemetry.Event) (*detections.Correlator, error) {
	res, err := ruleset.LoadFS(rules.FS, ".", detections.Options{Source: detections.SourceBuiltin})
	if err != nil {
		return nil, fmt.Errorf("builtin pack: %w", err)
	}
	if len(res.Errors) > 0 {
		return nil, fmt.Errorf("builtin pack: %v", res.Errors[0])
	}
	q.Rules = append(q.Rules, res.Rules...)
	q.Engine = detections.NewEngine(q.Rules)
	if sample != nil {
		q.Engine.Prepare(sample)
	}
	c, errs := detections.NewCorrelator(q.Rules)
	if len(errs) > 0 {
		return nil, fmt.Errorf("correlator: %w", errors.Join(errs...))
	}
	return c, nil
}

// CorrelatedResult is a scan with correlation rules: its hits and the
// correlation state it held.
type CorrelatedResult struct {
	ScanResult
	CorrelationHits int
	PeakGroups      int    // most open correlation groups, sampled every 1,024 events
	PeakHeap        uint64 // most heap in use, sampled every 8,192 events
}

// ScanCorrelated is Scan with every hit also fed to c (nil: no
// correlation, but the same sampling), which is advanced with event time
// and flushed at the end.
func (q *Quarry) ScanCorrelated(path string, c *detections.Correlator) (CorrelatedResult, error) {
	var res CorrelatedResult
	r, _, err := importers.Open(path)
	if err != nil {
		return res, fmt.Errorf("quarry scan: %w", err)
	}
	defer r.Close()
	emitCorr := func(detections.Hit, int64) { res.CorrelationHits++ }
	var ms runtime.MemStats
	var ev telemetry.Event
	for {
		err := importers.NextInto(r, &ev)
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			var re *telemetry.RecordError
			if errors.As(err, &re) && re.Reason != "read failed" {
				res.BadRecords++
				continue
			}
			return res, fmt.Errorf("quarry scan: %w", err)
		}
		if c == nil {
			res.Hits += q.Engine.Match(&ev, nil)
		} else {
			ref := int64(res.Events)
			res.Hits += q.Engine.Match(&ev, func(h detections.Hit) { c.Observe(h, ref, emitCorr) })
			c.Advance(ev.Time, emitCorr)
		}
		res.Events++
		if res.Events%1024 == 0 && c != nil {
			res.PeakGroups = max(res.PeakGroups, c.Groups())
		}
		if res.Events%8192 == 0 {
			runtime.ReadMemStats(&ms)
			res.PeakHeap = max(res.PeakHeap, ms.HeapInuse)
		}
	}
	if c != nil {
		c.Flush(emitCorr)
	}
	return res, nil
}
