package main

import (
	"github.com/quarry-sec/quarry/tables/activity"
	"github.com/quarry-sec/quarry/telemetry"
)

// countTables counts a batch of imported events by the named table each
// lands in (process_events, socket_events… or only events), for the
// summary's per-table lines.
func countTables(c activity.Counts, batch []telemetry.Event) {
	for i := range batch {
		c.Add(&batch[i])
	}
}
