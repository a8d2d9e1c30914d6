package detections

import (
	"sync"

	"github.com/quarry-sec/quarry/telemetry"
)

// naiveMatch reports whether r matches ev according to the reference
// evaluator (see Reference); a rule error counts as no match and is
// reported by the tests comparing with the engine.
func naiveMatch(r *Rule, ev *telemetry.Event) bool {
	naiveMu.Lock()
	defer naiveMu.Unlock()
	m, err := naiveRef.Match(r, ev)
	return err == nil && m
}

var (
	naiveMu  sync.Mutex
	naiveRef = NewReference()
)
