package incidents_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/detections/incidents"
	"github.com/quarry-sec/quarry/detections/pipeline"
	"github.com/quarry-sec/quarry/detections/ruleset"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
	"github.com/quarry-sec/quarry/telemetry/importers"
)

var (
	engineOnce sync.Once
	engine     *detections.Engine
	rules      []*detections.Rule
	kb         *attack.KB
	engineErr  error
)

// builtin returns an engine of Quarry's IoA pack and the ATT&CK KB.
func builtin(t testing.TB) (*detections.Engine, *attack.KB) {
	t.Helper()
	engineOnce.Do(func() {
		kb, engineErr = attack.Load("")
		if engineErr != nil {
			return
		}
		var res *detections.LoadResult
		res, engineErr = ruleset.Load(ruleset.Config{Builtin: true, KB: kb})
		if engineErr == nil && len(res.Errors) > 0 {
			engineErr = res.Errors[0]
		}
		if engineErr == nil {
			rules = res.Rules
			engine = detections.NewEngine(res.Rules)
		}
	})
	if engineErr != nil {
		t.Fatalf("load builtin rules: %v", engineErr)
	}
	return engine, kb
}

func openStore(t testing.TB) *eventstore.Store {
	t.Helper()
	st, err := eventstore.Open(filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// importFile imports a recording into st with detection and correlation
// rules and refreshes the incidents, as quarry import does; it returns the
// stored hit rows.
func importFile(t testing.TB, st *eventstore.Store, path string) []telemetry.Hit {
	t.Helper()
	r, _, err := importers.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var evs []telemetry.Event
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
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	_, kb := builtin(t)
	det, errs := pipeline.NewDetector(rules, kb)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	ctx := context.Background()
	recs, err := det.Store(ctx, st, evs)
	if err != nil {
		t.Fatal(err)
	}
	more, err := det.Finish(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	recs = append(recs, more...)
	if _, err := incidents.RefreshHits(ctx, st, recs, incidents.Options{}); err != nil {
		t.Fatal(err)
	}
	return recs
}

// storeEvents stores events with detection (no correlation rules, so the
// grouping tests see only the hits they set up) and refreshes the
// incidents.
func storeEvents(t testing.TB, st *eventstore.Store, evs []telemetry.Event) []telemetry.Hit {
	t.Helper()
	eng, kb := builtin(t)
	ctx := context.Background()
	recs, err := pipeline.Detect(ctx, st, eng, kb, evs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := incidents.RefreshHits(ctx, st, recs, incidents.Options{}); err != nil {
		t.Fatal(err)
	}
	return recs
}

// all returns the stored incidents with their hit ids, without when they
// were detected (which differs from one store to another).
func all(t testing.TB, st *eventstore.Store) []eventstore.IncidentRecord {
	t.Helper()
	ctx := context.Background()
	var out []eventstore.IncidentRecord
	if err := st.ScanIncidents(ctx, eventstore.IncidentFilter{}, func(r *eventstore.IncidentRecord) bool {
		out = append(out, *r)
		out[len(out)-1].DetectedAt = time.Time{}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	for i := range out {
		if err := st.ScanIncidentHits(ctx, []string{out[i].IncidentID}, nil, func(p eventstore.IncidentHitPair) bool {
			out[i].HitIDs = append(out[i].HitIDs, p.HitID)
			return true
		}); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// datasets is ../shared/datasets (QUARRY_DATASETS overrides).
func datasets(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("QUARRY_DATASETS")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "datasets")
	}
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("datasets not found at %s (set QUARRY_DATASETS to the folder of /work/shared/datasets): %v", dir, err)
	}
	return dir
}

// detectOnly stores one event with detection, without touching incidents.
func detectOnly(ctx context.Context, st *eventstore.Store, eng *detections.Engine, kb *attack.KB, ev telemetry.Event) ([]telemetry.Hit, error) {
	return pipeline.Detect(ctx, st, eng, kb, []telemetry.Event{ev})
}
