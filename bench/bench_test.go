package bench

import (
	"runtime"
	"testing"

	"github.com/quarry-sec/quarry/internal/benchload"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/importers"
)

const mib = 1 << 20

// BenchmarkQuarry reads the whole corpus through Quarry's importer and
// matches every event; one op is one pass over the corpus.
func BenchmarkQuarry(b *testing.B) {
	f := getFixture(b)
	sample, err := FirstEvent(f.corpus.Path)
	if err != nil {
		b.Fatal(err)
	}
	q, heap, err := heapAfter(func() (*Quarry, error) { return LoadQuarry(f.rules, sample) })
	if err != nil {
		b.Fatal(err)
	}
	var res ScanResult
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	b.SetBytes(f.corpus.Bytes)
	b.ResetTimer()
	cpu0 := benchload.CPUTime()
	for b.Loop() {
		if res, err = q.Scan(f.corpus.Path, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	cpu := benchload.CPUTime() - cpu0
	runtime.ReadMemStats(&ms1)
	events := float64(res.Events) * float64(b.N)
	b.ReportMetric(events/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(events/cpu.Seconds(), "events/cpu-s")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/events, "allocs/event")
	b.ReportMetric(float64(heap)/mib, "rules-MiB")
	b.ReportMetric(float64(len(q.Rules)), "rules")
	b.ReportMetric(float64(len(q.LoadErrors)), "load-failures")
	b.ReportMetric(float64(res.Hits), "hits")
	b.ReportMetric(float64(res.Events), "events")
	runtime.KeepAlive(q)
}

// BenchmarkQuarrySample is Quarry over the peers' sample, for hit counts
// comparable with theirs.
func BenchmarkQuarrySample(b *testing.B) {
	f := getFixture(b)
	sample, err := FirstEvent(f.corpus.Path)
	if err != nil {
		b.Fatal(err)
	}
	q, err := LoadQuarry(f.rules, sample)
	if err != nil {
		b.Fatal(err)
	}
	var res ScanResult
	for b.Loop() {
		if res, err = q.Scan(f.sample.Path, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(res.Events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(res.Hits), "hits")
	b.ReportMetric(float64(res.Events), "events")
}

func benchPeer(b *testing.B, load func(f *fixture) (Peer, error)) {
	f := getFixture(b)
	p, heap, err := heapAfter(func() (Peer, error) { return load(f) })
	if err != nil {
		b.Fatal(err)
	}
	var res ScanResult
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	for b.Loop() {
		if res, err = ScanPeer(p, f.sample.Path); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&ms1)
	events := float64(res.Events) * float64(b.N)
	b.ReportMetric(events/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/events, "allocs/event")
	b.ReportMetric(float64(heap)/mib, "rules-MiB")
	b.ReportMetric(float64(p.LoadFailures()), "load-failures")
	b.ReportMetric(float64(p.RuntimeFailures()), "runtime-failures")
	b.ReportMetric(float64(res.Hits), "hits")
	b.ReportMetric(float64(res.Events), "events")
	runtime.KeepAlive(p)
}

// BenchmarkGoSigmaRuleEngine is github.com/markuskont/go-sigma-rule-engine
// over the sample (BENCH_PEER_EVENTS events; 100000 for the whole corpus).
func BenchmarkGoSigmaRuleEngine(b *testing.B) {
	benchPeer(b, func(f *fixture) (Peer, error) { return LoadGoSigmaRuleEngine(f.stagedDir) })
}

// BenchmarkSigmaGo is github.com/bradleyjkemp/sigma-go over the sample.
func BenchmarkSigmaGo(b *testing.B) {
	benchPeer(b, func(f *fixture) (Peer, error) { return LoadSigmaGo(f.rules) })
}

// BenchmarkQuarryMatchOnly matches the first 20,000 corpus events, decoded
// into memory beforehand: the engine's share of the end-to-end figure.
func BenchmarkQuarryMatchOnly(b *testing.B) {
	f := getFixture(b)
	r, _, err := importers.Open(f.corpus.Path)
	if err != nil {
		b.Fatal(err)
	}
	var evs []*telemetry.Event
	for len(evs) < 20000 {
		ev, err := r.Next()
		if err != nil {
			break
		}
		evs = append(evs, &ev)
	}
	r.Close()
	q, err := LoadQuarry(f.rules, evs[0])
	if err != nil {
		b.Fatal(err)
	}
	hits := 0
	for _, ev := range evs { // warm up the memos
		q.Engine.Match(ev, nil)
	}
	b.ResetTimer()
	cpu0 := benchload.CPUTime()
	for b.Loop() {
		hits = 0
		for _, ev := range evs {
			hits += q.Engine.Match(ev, nil)
		}
	}
	cpu := benchload.CPUTime() - cpu0
	n := float64(len(evs)) * float64(b.N)
	b.ReportMetric(b.Elapsed().Seconds()*1e6/n, "µs/event")
	b.ReportMetric(cpu.Seconds()*1e6/n, "cpu-µs/event")
	b.ReportMetric(n/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(hits), "hits")
}

// BenchmarkQuarryImportOnly reads the whole corpus through the importer
// (NextInto) without matching: the importer's share.
func BenchmarkQuarryImportOnly(b *testing.B) {
	f := getFixture(b)
	events := 0
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	b.ResetTimer()
	cpu0 := benchload.CPUTime()
	for b.Loop() {
		r, _, err := importers.Open(f.corpus.Path)
		if err != nil {
			b.Fatal(err)
		}
		var ev telemetry.Event
		events = 0
		for importers.NextInto(r, &ev) == nil {
			events++
		}
		r.Close()
	}
	b.StopTimer()
	cpu := benchload.CPUTime() - cpu0
	runtime.ReadMemStats(&ms1)
	n := float64(events) * float64(b.N)
	b.ReportMetric(b.Elapsed().Seconds()*1e6/n, "µs/event")
	b.ReportMetric(cpu.Seconds()*1e6/n, "cpu-µs/event")
	b.ReportMetric(n/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/n, "allocs/event")
}

// BenchmarkQuarryCorrelations runs the corpus with the SigmaHQ rules plus
// Quarry's builtin pack, with (correlations) and without (plain) its
// correlation rules evaluated: the cost of correlation, and the state it
// holds (peak open groups, peak heap).
func BenchmarkQuarryCorrelations(b *testing.B) {
	f := getFixture(b)
	sample, err := FirstEvent(f.corpus.Path)
	if err != nil {
		b.Fatal(err)
	}
	for _, mode := range []string{"plain", "correlations"} {
		b.Run(mode, func(b *testing.B) {
			q, err := LoadQuarry(f.rules, sample)
			if err != nil {
				b.Fatal(err)
			}
			c, err := q.WithBuiltinPack(sample)
			if err != nil {
				b.Fatal(err)
			}
			if mode == "plain" {
				c = nil
			}
			var res CorrelatedResult
			cpu0 := benchload.CPUTime()
			for b.Loop() {
				if res, err = q.ScanCorrelated(f.corpus.Path, c); err != nil {
					b.Fatal(err)
				}
			}
			cpu := benchload.CPUTime() - cpu0
			events := float64(res.Events) * float64(b.N)
			b.ReportMetric(events/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(events/cpu.Seconds(), "events/cpu-s")
			b.ReportMetric(float64(res.Hits), "hits")
			b.ReportMetric(float64(res.CorrelationHits), "correlation-hits")
			b.ReportMetric(float64(res.PeakGroups), "peak-groups")
			b.ReportMetric(float64(res.PeakHeap)/mib, "peak-heap-MiB")
		})
	}
}
