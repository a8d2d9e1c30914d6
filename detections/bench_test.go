package detections

import (
	"path/filepath"
	"runtime"
	"slices"
	"testing"
)

func loadProcessCreation(tb testing.TB) ([]*Rule, uint64) {
	dir := filepath.Join(sigmaDir(tb), "rules", "windows", "process_creation")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	res, err := LoadDir(dir, Options{})
	if err != nil {
		tb.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if len(res.Errors) > 0 {
		tb.Fatalf("%d rules did not load, first: %v", len(res.Errors), res.Errors[0])
	}
	return res.Rules, after.HeapAlloc - before.HeapAlloc
}

// BenchmarkMatchProcessCreation matches Sysmon EventID 1 events against all
// of SigmaHQ's Windows process_creation rules on one goroutine.
func BenchmarkMatchProcessCreation(b *testing.B) {
	rules, heap := loadProcessCreation(b)
	evs := corpus(b, 5000, true)
	eng := NewEngine(rules)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	eng.Prepare(evs[0])
	runtime.GC()
	runtime.ReadMemStats(&after)
	hits := 0
	for _, ev := range evs { // warm up
		hits += eng.Match(ev, nil)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		eng.Match(evs[i%len(evs)], nil)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(len(rules)), "rules")
	b.ReportMetric(float64(heap)/(1<<20), "rules-MiB")
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "matcher-MiB")
	b.ReportMetric(float64(hits)/float64(len(evs)), "hits/event")
}

// TestEngineAgreesWithNaive checks that the compiled engine and the naive
// reference evaluator give identical hits on the corpus.
func TestEngineAgreesWithNaive(t *testing.T) {
	res := loadAll(t)
	n := 200
	if testing.Short() {
		n = 20
	}
	evs := corpus(t, n, false)
	eng := NewEngine(res.Rules)
	var got, want []string
	total := 0
	for i, ev := range evs {
		got = got[:0]
		eng.Match(ev, func(h Hit) { got = append(got, h.Rule.ID+" "+h.Rule.Title) })
		want = want[:0]
		for _, r := range res.Rules {
			if naiveMatch(r, ev) {
				want = append(want, r.ID+" "+r.Title)
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("event %d: engine %v, naive %v", i, got, want)
		}
		total += len(got)
	}
	t.Logf("%d events, %d hits, engine and naive agree", len(evs), total)
	if total == 0 {
		t.Error("no hits at all: the corpus exercises nothing")
	}
	// The events after the first anchorSamples were scanned with the
	// literals anchored anew from the values seen.
	if s := eng.c.set(keyOf(evs[0])); !testing.Short() && s.anchored[fieldID("CommandLine")].Load() == nil {
		t.Error("the CommandLine filter was not anchored anew: the test exercises only the first anchors")
	}
}

// BenchmarkBuildSetProcessCreation builds the matcher of SigmaHQ's Windows
// process_creation rules for a Sysmon event (what the first event of a
// scan waits for, the rules' own programs already compiled): literal
// filters, requirement groups, the flat program.
func BenchmarkBuildSetProcessCreation(b *testing.B) {
	rules, _ := loadProcessCreation(b)
	ev := corpus(b, 1, true)[0]
	NewEngine(rules).Prepare(ev) // compiles the rules' programs
	b.ReportAllocs()
	for b.Loop() {
		NewEngine(rules).Prepare(ev)
	}
}
