package incidents_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/detections/incidents"
	"github.com/quarry-sec/quarry/telemetry"
)

// BenchmarkRefresh measures what one arriving hit costs the live pipeline:
// regrouping the incident it joins, which already holds n hits (a script
// whose children decode one after the other, 1 s apart), with the process
// lookups in the store.
//
//	go test -run '^$' -bench Refresh ./detections/incidents/
func BenchmarkRefresh(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("hits=%d", n), func(b *testing.B) {
			st := openStore(b)
			evs := []telemetry.Event{execAt(0, 100, 1, "/usr/bin/bash", "bash /tmp/stage.sh")}
			for i := range n {
				evs = append(evs, execAt(time.Duration(i+1)*time.Second, int64(1000+i), 100, "/usr/bin/sh", decodeCmd))
			}
			recs := storeEvents(b, st, evs)
			if got := all(b, st); len(got) != 1 || got[0].HitCount != int64(n) {
				b.Fatalf("want one incident of %d hits, got %d incidents", n, len(got))
			}
			last := []telemetry.Hit{recs[len(recs)-1]}
			ctx := context.Background()
			b.ResetTimer()
			for b.Loop() {
				if _, err := incidents.RefreshHits(ctx, st, last, incidents.Options{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(n), "us/hit-regrouped")
		})
	}
}
