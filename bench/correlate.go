package bench

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/detections/rules"
	"github.com/quarry-sec/quarry/detections/ruleset"
	"github.com/quarry-sec/quarry/telemetry"
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
	emitCorr := func(detections.Hit, int64) { res.CorrelationHits++ }
	var ms runtime.MemStats
	err := eachEvent(path, &res.ScanResult, func(ev *telemetry.Event) {
		if c == nil {
			res.Hits += q.Engine.Match(ev, nil)
		} else {
			ref := int64(res.Events)
			res.Hits += q.Engine.Match(ev, func(h detections.Hit) { c.Observe(h, ref, emitCorr) })
			c.Advance(ev.Time, emitCorr)
		}
		if n := res.Events + 1; n%1024 == 0 && c != nil {
			res.PeakGroups = max(res.PeakGroups, c.Groups())
		}
		if n := res.Events + 1; n%8192 == 0 {
			runtime.ReadMemStats(&ms)
			res.PeakHeap = max(res.PeakHeap, ms.HeapInuse)
		}
	})
	if err != nil {
		return res, err
	}
	if c != nil {
		c.Flush(emitCorr)
	}
	return res, nil
}
