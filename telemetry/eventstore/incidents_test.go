package eventstore

import (
	"context"
	"database/sql"
	"github.com/quarry-sec/quarry/telemetry"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func incidentIDs(t *testing.T, s *Store, f IncidentFilter) []string {
	t.Helper()
	var ids []string
	if err := s.ScanIncidents(context.Background(), f, func(r *IncidentRecord) bool {
		ids = append(ids, r.IncidentID)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestIncidentsStore(t *testing.T) {
	clock := t0
	s := openTemp(t, WithRetention(24*time.Hour, -1), WithClock(func() time.Time { return clock }))
	ctx := context.Background()
	if err := s.AppendHits(ctx, []telemetry.Hit{{HitID: "h1", Time: t0, Host: "a"}, {HitID: "h2", Time: t0, Host: "a"}}); err != nil {
		t.Fatal(err)
	}
	a := IncidentRecord{IncidentID: "i1", Host: "a", FirstSeen: t0, LastSeen: t0.Add(time.Minute), Score: 7.5,
		Severity: "high", Tactics: "execution", Techniques: "T1059", HitCount: 2, RootPID: 10, RootPath: "/bin/sh",
		RootKey: "s:10:1", RootEID: 3, Summary: "sh", HitIDs: []string{"h1", "h2"}}
	b := a
	b.IncidentID, b.Host, b.FirstSeen, b.LastSeen, b.HitIDs = "i2", "b", t0.Add(time.Hour), t0.Add(2*time.Hour), []string{"h3"}
	if err := s.ReplaceIncidents(ctx, nil, []IncidentRecord{a, b}); err != nil {
		t.Fatal(err)
	}
	var got IncidentRecord
	s.ScanIncidents(ctx, IncidentFilter{IncidentIDs: []string{"i1"}}, func(r *IncidentRecord) bool { got = *r; return true })
	want := a
	want.HitIDs = nil
	want.DetectedAt = clock // when its hits were stored
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
	}
	if ids := incidentIDs(t, s, IncidentFilter{Since: t0.Add(30 * time.Minute)}); !reflect.DeepEqual(ids, []string{"i2"}) {
		t.Errorf("since: %v", ids)
	}
	if ids := incidentIDs(t, s, IncidentFilter{Hosts: []string{"a"}, MinScore: 7}); !reflect.DeepEqual(ids, []string{"i1"}) {
		t.Errorf("host and score: %v", ids)
	}
	spans, err := s.IncidentsOverlapping(ctx, "b", t0, t0.Add(time.Hour))
	if err != nil || len(spans) != 1 || spans[0].IncidentID != "i2" {
		t.Errorf("overlapping [t0, t0+1h] on b: %+v %v", spans, err)
	}
	if spans, _ := s.IncidentsOverlapping(ctx, "b", t0, t0.Add(59*time.Minute)); len(spans) != 0 {
		t.Errorf("i2 starts after t0+59m: %+v", spans)
	}
	// Replacing i1 by i3 takes its hit pairs with it.
	c := a
	c.IncidentID, c.HitIDs = "i3", []string{"h1"}
	if err := s.ReplaceIncidents(ctx, []string{"i1"}, []IncidentRecord{c}); err != nil {
		t.Fatal(err)
	}
	var pairs []IncidentHitPair
	s.ScanIncidentHits(ctx, nil, nil, func(p IncidentHitPair) bool { pairs = append(pairs, p); return true })
	if want := []IncidentHitPair{{"i2", "h3"}, {"i3", "h1"}}; !reflect.DeepEqual(pairs, want) {
		t.Errorf("pairs: %v, want %v", pairs, want)
	}
	// Retention: hits stored more than a day ago go, and so do the incident
	// pairs of missing hits (h3 was never stored) and incidents left empty.
	clock = t0.Add(48 * time.Hour)
	if _, err := s.EnforceRetention(ctx); err != nil {
		t.Fatal(err)
	}
	if ids := incidentIDs(t, s, IncidentFilter{}); len(ids) != 0 {
		t.Errorf("incidents after their hits expired: %v", ids)
	}
}

// A store written before incidents existed (schema version 1, no incidents
// tables) opens and gains them.
func TestIncidentsOnOldStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(schema + hitsSchema + "PRAGMA user_version = 1"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if ids := incidentIDs(t, s, IncidentFilter{}); len(ids) != 0 {
		t.Fatal(ids)
	}
}

// TestDetectionTime: hits and incidents carry when Quarry found them
// (stored_at), apart from when their events happened, and are selected by
// either.
func TestDetectionTime(t *testing.T) {
	clock := t0.Add(30 * 24 * time.Hour) // a recording of a month ago, imported now
	s := openTemp(t, WithClock(func() time.Time { return clock }))
	ctx := context.Background()
	if err := s.AppendHits(ctx, []telemetry.Hit{{HitID: "old", Time: t0, Host: "a"}}); err != nil {
		t.Fatal(err)
	}
	found := clock
	clock = clock.Add(time.Hour)
	if err := s.AppendHits(ctx, []telemetry.Hit{{HitID: "new", Time: t0.Add(time.Minute), Host: "a"}}); err != nil {
		t.Fatal(err)
	}
	var got []string
	var detected []time.Time
	err := s.ScanHits(ctx, HitFilter{DetectedSince: found.Add(time.Minute)}, func(h *telemetry.Hit) bool {
		got, detected = append(got, h.HitID), append(detected, h.DetectedAt)
		return true
	})
	if err != nil || !reflect.DeepEqual(got, []string{"new"}) || !detected[0].Equal(clock) {
		t.Fatalf("hits detected since %v: %v at %v, %v", found.Add(time.Minute), got, detected, err)
	}
	got = nil
	s.ScanHits(ctx, HitFilter{DetectedUntil: found.Add(time.Minute), Since: t0.Add(-time.Hour)}, func(h *telemetry.Hit) bool {
		got = append(got, h.HitID)
		return true
	})
	if !reflect.DeepEqual(got, []string{"old"}) {
		t.Fatalf("hits detected before: %v", got)
	}
	// An incident is detected when its latest hit was.
	clock = clock.Add(time.Hour)
	if err := s.ReplaceIncidents(ctx, nil, []IncidentRecord{{IncidentID: "i", Host: "a", FirstSeen: t0,
		LastSeen: t0.Add(time.Minute), HitIDs: []string{"old", "new"}}}); err != nil {
		t.Fatal(err)
	}
	var in IncidentRecord
	s.ScanIncidents(ctx, IncidentFilter{DetectedSince: found.Add(time.Minute)}, func(r *IncidentRecord) bool { in = *r; return true })
	if in.IncidentID != "i" || !in.DetectedAt.Equal(found.Add(time.Hour)) {
		t.Fatalf("incident: %+v", in)
	}
	if ids := incidentIDs(t, s, IncidentFilter{DetectedUntil: found.Add(time.Hour)}); len(ids) != 0 {
		t.Errorf("detected before its latest hit: %v", ids)
	}
}
