package bench

import (
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/telemetry/importers"
)

// TestCorpus checks the corpus is what the benchmarks claim: the rule
// count, the event count, the regression events in it.
func TestCorpus(t *testing.T) {
	f := getFixture(t)
	t.Logf("%d rule files (process_creation of rules, rules-threat-hunting, rules-emerging-threats)", len(f.rules))
	t.Logf("corpus: %d events (%d regression), %.1f MiB, %.0f bytes/event", f.corpus.Events, f.corpus.Regression,
		float64(f.corpus.Bytes)/mib, float64(f.corpus.Bytes)/float64(f.corpus.Events))
	if len(f.rules) < 1400 {
		t.Errorf("%d rule files, want about 1,415", len(f.rules))
	}
	if f.corpus.Events != corpusEvents || f.corpus.Regression < 50 {
		t.Errorf("corpus: %+v", f.corpus)
	}
}

// TestQuarryAgreesWithReference checks that Quarry's engine and its
// reference evaluator give identical hits on every event of the corpus.
func TestQuarryAgreesWithReference(t *testing.T) {
	f := getFixture(t)
	sample, err := FirstEvent(f.corpus.Path)
	if err != nil {
		t.Fatal(err)
	}
	q, err := LoadQuarry(f.rules, sample)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range q.LoadErrors {
		t.Errorf("did not load: %v", e)
	}
	ref := detections.NewReference()
	r, _, err := importers.Open(f.corpus.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var got, want []string
	events, hits, bad := 0, 0, 0
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got, want = got[:0], want[:0]
		q.Engine.Match(&ev, func(h detections.Hit) { got = append(got, h.Rule.ID) })
		for _, rule := range q.Rules {
			m, err := ref.Match(rule, &ev)
			if err != nil {
				t.Fatal(err)
			}
			if m {
				want = append(want, rule.ID)
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			if bad++; bad <= 20 {
				t.Errorf("event %d: engine %v, reference %v", events, got, want)
			}
		}
		events++
		hits += len(got)
	}
	t.Logf("%d events, %d hits, %d disagreements", events, hits, bad)
	if events != f.corpus.Events || hits == 0 {
		t.Errorf("read %d events with %d hits", events, hits)
	}
}
