package eventstore

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/telemetry"
)

// BenchmarkAppend stores batches of 5000 events as an import does: one in
// five a process start, the others events of those processes (by pid).
func BenchmarkAppend(b *testing.B) {
	s := openTemp(b)
	ctx := context.Background()
	const batch = 5000
	evs := make([]telemetry.Event, batch)
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		for i := range evs {
			e := sampleEvent(n)
			if i%5 != 0 {
				e.Kind, e.Category = telemetry.KindOther, "file_event"
				e.PID = int64(1000 + n - n%5)
				e.Fields = telemetry.FieldsFromMap(map[string]string{"TargetFilename": "/tmp/f" + strconv.Itoa(n)})
			}
			e.Time = t0.Add(time.Duration(n) * time.Millisecond)
			evs[i] = e
			n++
		}
		if _, err := s.Append(ctx, evs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}
