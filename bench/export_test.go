package bench

import (
	"os"
	"path/filepath"
	"testing"
)

// TestExportCorpus copies the benchmark's 100,000-event corpus and its 1,415
// staged rule files to $QUARRY_BENCH_EXPORT (corpus.jsonl, rules/), for
// measuring the quarry command end to end:
//
//	QUARRY_BENCH_EXPORT=/tmp/qb go test -run TestExportCorpus .
//	taskset -c 0 quarry scan --no-builtin --sigma /tmp/qb/rules --format json -q /tmp/qb/corpus.jsonl >/dev/null
func TestExportCorpus(t *testing.T) {
	out := os.Getenv("QUARRY_BENCH_EXPORT")
	if out == "" {
		t.Skip("QUARRY_BENCH_EXPORT not set")
	}
	f := getFixture(t)
	rules := filepath.Join(out, "rules")
	if err := os.MkdirAll(rules, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := StageRules(f.rules, rules); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(f.corpus.Path, filepath.Join(out, "corpus.jsonl")); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d rules, %d events (%d regression) in %s", len(f.rules), f.corpus.Events, f.corpus.Regression, out)
}
