package rules

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/telemetry"
)

// BenchmarkPackOnDatasets matches the whole builtin pack against every event
// of the recorded datasets (Windows and Linux, process and other kinds,
// decoded beforehand), so the pack's matching cost per event can be followed
// as rules are added and profiled (-cpuprofile). Skipped without the datasets.
func BenchmarkPackOnDatasets(b *testing.B) {
	root := datasetsDir()
	dirs, err := os.ReadDir(root)
	if err != nil {
		b.Skipf("datasets not found at %s (set QUARRY_DATASETS): %v", root, err)
	}
	var evs []telemetry.Event
	for _, d := range dirs {
		if d.IsDir() && d.Name() != "LICENSES" {
			readDataset(b, filepath.Join(root, d.Name()), func(ev *telemetry.Event) { evs = append(evs, *ev) })
		}
	}
	if b.Failed() || len(evs) == 0 {
		b.Fatalf("no events read from %s", root)
	}
	eng := detections.NewEngine(loadPack(b))
	hits := 0
	count := func(detections.Hit) { hits++ }
	for b.Loop() {
		hits = 0
		for i := range evs {
			eng.Match(&evs[i], count)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(evs)), "ns/event")
	b.ReportMetric(float64(len(evs)), "events")
	b.ReportMetric(float64(hits), "hits")
}
