package activity_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/quarry-sec/quarry/extension/sqlengine"
	"github.com/quarry-sec/quarry/tables"
	"github.com/quarry-sec/quarry/tables/activity"
	"github.com/quarry-sec/quarry/tables/process"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/importers"
)

// datasetsDir finds ../shared/datasets beside the module, or skips.
func datasetsDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("module root not found; skipping the ../shared/datasets tests")
		}
		dir = parent
	}
	d := filepath.Join(filepath.Dir(dir), "shared", "datasets")
	if _, err := os.Stat(d); err != nil {
		t.Skipf("recorded datasets absent (%s): skipping", d)
	}
	return d
}

// TestDatasetCoverage imports each recording and counts, through the
// tables themselves, how many of its events the named tables show: at
// least 90% of every recording.
func TestDatasetCoverage(t *testing.T) {
	root := datasetsDir(t)
	files, _ := filepath.Glob(filepath.Join(root, "*", "*"))
	for _, f := range files {
		if filepath.Ext(f) != ".json" && filepath.Ext(f) != ".jsonl" && filepath.Ext(f) != ".log" {
			continue
		}
		name, _ := filepath.Rel(root, f)
		t.Run(name, func(t *testing.T) {
			r, _, err := importers.Open(f)
			if err != nil {
				t.Fatal(err)
			}
			var evs []telemetry.Event
			for {
				e, err := r.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err == nil {
					evs = append(evs, e)
				}
			}
			r.Close()
			st := newStore(t)
			if _, err := st.Append(context.Background(), evs); err != nil {
				t.Fatal(err)
			}
			reg := tables.NewRegistry()
			if err := reg.Register(append(activity.Tables(st), process.Events(st, process.Options{}))...); err != nil {
				t.Fatal(err)
			}
			e, err := sqlengine.Open(reg)
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			count := func(q string) int64 {
				var n int64
				rs, err := e.Query(context.Background(), q)
				if err != nil {
					t.Fatal(err)
				}
				defer rs.Close()
				rs.Next()
				if err := rs.Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			total := count("SELECT count(*) FROM events")
			var named int64
			for _, n := range reg.Names() {
				if n == "events" || n == "process_activity" {
					continue
				}
				named += count("SELECT count(*) FROM " + n)
			}
			pct := 100 * float64(named) / float64(max(total, 1))
			t.Logf("%s: %d of %d events in named tables (%.1f%%)", name, named, total, pct)
			if total > 0 && pct < 90 {
				t.Errorf("%.1f%% of the events in named tables, want at least 90%%", pct)
			}
		})
	}
}
