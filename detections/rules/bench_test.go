package rules

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/importers"
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
		if !d.IsDir() || d.Name() == "LICENSES" {
			continue
		}
		files, err := os.ReadDir(filepath.Join(root, d.Name()))
		if err != nil {
			b.Fatal(err)
		}
		have := map[string]bool{}
		for _, f := range files {
			have[f.Name()] = true
		}
		for _, f := range files {
			name := f.Name()
			if f.IsDir() || (strings.HasSuffix(name, ".log") && have[strings.TrimSuffix(name, ".log")+".auditd.jsonl"]) {
				continue
			}
			r, _, err := importers.Open(filepath.Join(root, d.Name(), name))
			if err != nil {
				b.Fatalf("%s: %v", name, err)
			}
			for {
				ev, err := r.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				var re *telemetry.RecordError
				if errors.As(err, &re) {
					continue
				}
				if err != nil {
					b.Fatalf("%s: %v", name, err)
				}
				evs = append(evs, ev)
			}
			r.Close()
		}
	}
	eng := detections.NewEngine(loadPack(b))
	hits := 0
	count := func(detections.Hit) { hits++ }
	b.ResetTimer()
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
