package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/fleet/store"
)

// testDetectionTime: detections and incidents keep when the host found them
// (DetectedAt) beside their events' time, and are filtered and ordered by
// either: a recording of last month imported today is old by event time and
// new by detection.
func testDetectionTime(t *testing.T, s store.Store) {
	h := enroll(t, s, "host-a", "ka", "linux")
	now := base.Add(30 * 24 * time.Hour)
	live := detection("live", "T1059.004", "execution", "high", now.Add(-time.Minute))
	live.DetectedAt = now.Add(-time.Minute)
	imported := detection("imported", "T1003.001", "credential-access", "critical", base)
	imported.DetectedAt = now
	older := detection("older", "T1003.001", "credential-access", "high", base.Add(time.Hour))
	older.DetectedAt = base.Add(2 * time.Hour)
	in := incident("inc-imported", 7, base, base.Add(time.Minute), "imported")
	in.DetectedAt = now
	if err := s.AppendLogs(ctx, h.ID, &store.LogBatch{Detections: []store.Detection{live, imported, older},
		Incidents: []store.Incident{in}}); err != nil {
		t.Fatal(err)
	}
	hits := func(f store.DetectionFilter) string {
		ds, _, err := s.Detections(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, d := range ds {
			out = append(out, d.HitID)
		}
		return fmt.Sprint(out)
	}
	recent := now.Add(-time.Hour)
	if got := hits(store.DetectionFilter{Since: recent}); got != "[live]" {
		t.Errorf("by event time since %v: %s", recent, got)
	}
	if got := hits(store.DetectionFilter{Since: recent, By: store.TimeDetected}); got != "[imported live]" {
		t.Errorf("by detection time since %v: %s", recent, got)
	}
	if got := hits(store.DetectionFilter{Until: recent, By: store.TimeDetected}); got != "[older]" {
		t.Errorf("by detection time until %v: %s", recent, got)
	}
	ds, _, _ := s.Detections(ctx, store.DetectionFilter{Techniques: []string{"T1003.001"}, Severities: []string{"critical"}})
	if len(ds) != 1 || !ds[0].DetectedAt.Equal(now) || !ds[0].Time.Equal(base) {
		t.Fatalf("imported detection: %+v", ds)
	}
	if d, err := s.(store.WebQueries).DetectionByID(ctx, ds[0].ID); err != nil || !d.DetectedAt.Equal(now) {
		t.Errorf("DetectionByID: %+v, %v", d, err)
	}
	// A host that does not report detected_at: the time the fleet received
	// it stands in.
	if err := s.AppendLogs(ctx, h.ID, &store.LogBatch{Detections: []store.Detection{
		detection("legacy", "T1059", "execution", "low", base)}}); err != nil {
		t.Fatal(err)
	}
	ds, _, _ = s.Detections(ctx, store.DetectionFilter{Severities: []string{"low"}})
	if len(ds) != 1 || ds[0].DetectedAt.IsZero() || !ds[0].DetectedAt.Equal(ds[0].ReceivedAt) {
		t.Errorf("a detection without DetectedAt: %+v", ds)
	}
	ins, _, err := s.Incidents(ctx, store.IncidentFilter{Since: recent, By: store.TimeDetected})
	if err != nil || len(ins) != 1 || !ins[0].DetectedAt.Equal(now) {
		t.Fatalf("incidents detected since %v: %+v, %v", recent, ins, err)
	}
	if ins, _, _ := s.Incidents(ctx, store.IncidentFilter{Since: recent}); len(ins) != 0 {
		t.Errorf("incidents by event time since %v: %+v", recent, ins)
	}
	hitsOf, err := s.IncidentHits(ctx, ins[0].ID)
	if err != nil || len(hitsOf) != 1 || len(hitsOf[0].Detections) != 1 || !hitsOf[0].Detections[0].DetectedAt.Equal(now) {
		t.Errorf("incident hits: %+v, %v", hitsOf, err)
	}
}
