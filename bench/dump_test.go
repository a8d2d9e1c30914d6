package bench

import (
	"bufio"
	"fmt"
	"os"
	"testing"

	"github.com/quarry-sec/quarry/detections"
)

// TestDumpHits writes every hit (event ordinal, rule id) to $QUARRY_HITS_DUMP,
// for comparing two engine versions quickly.
func TestDumpHits(t *testing.T) {
	out := os.Getenv("QUARRY_HITS_DUMP")
	if out == "" {
		t.Skip("QUARRY_HITS_DUMP not set")
	}
	f := getFixture(t)
	sample, err := FirstEvent(f.corpus.Path)
	if err != nil {
		t.Fatal(err)
	}
	q, err := LoadQuarry(f.rules, sample)
	if err != nil {
		t.Fatal(err)
	}
	w, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriter(w)
	res, err := q.Scan(f.corpus.Path, func(ev int, h detections.Hit) { fmt.Fprintf(bw, "%d %s\n", ev, h.Rule.ID) })
	if err != nil {
		t.Fatal(err)
	}
	bw.Flush()
	w.Close()
	t.Logf("%d events, %d hits", res.Events, res.Hits)
}
