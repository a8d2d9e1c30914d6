package storetest

import (
	"errors"
	"testing"

	"github.com/quarry-sec/quarry/fleet/store"
)

// testIntelSets: a set is stored whole per source, replaced by a new
// upload of the same source, listed without its data, and removed.
func testIntelSets(t *testing.T, s store.Store) {
	if sets, err := s.IntelSets(ctx); err != nil || len(sets) != 0 {
		t.Fatalf("empty store: %v, %v", sets, err)
	}
	if _, err := s.IntelSetData(ctx, "c2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("IntelSetData of nothing = %v", err)
	}
	bundle := []byte(`{"type": "bundle", "id": "bundle--1", "objects": []}` + "\n\u00e9")
	put := func(src, format, version string, data []byte) {
		t.Helper()
		set := &store.IntelSet{Source: src, Format: format, Confidence: 80, TTLSeconds: 86400, Indicators: 2,
			Version: version, Data: data}
		if err := s.PutIntelSet(ctx, set); err != nil {
			t.Fatal(err)
		}
		if set.Updated.IsZero() {
			t.Errorf("PutIntelSet left Updated zero")
		}
	}
	put("c2", "plain", "v1", []byte("198.51.100.7\nevil.example\n"))
	put("apt", "stix", "v2", bundle)
	put("c2", "plain", "v3", []byte("203.0.113.9\n"))
	sets, err := s.IntelSets(ctx)
	if err != nil || len(sets) != 2 || sets[0].Source != "apt" || sets[1].Source != "c2" {
		t.Fatalf("IntelSets = %+v, %v", sets, err)
	}
	if c := sets[1]; c.Version != "v3" || c.Format != "plain" || c.Confidence != 80 || c.TTLSeconds != 86400 ||
		c.Indicators != 2 || c.Data != nil {
		t.Errorf("listed c2 = %+v", c)
	}
	got, err := s.IntelSetData(ctx, "c2")
	if err != nil || string(got.Data) != "203.0.113.9\n" || got.Version != "v3" {
		t.Fatalf("IntelSetData(c2) = %+v, %v", got, err)
	}
	if got, err := s.IntelSetData(ctx, "apt"); err != nil || string(got.Data) != string(bundle) {
		t.Fatalf("IntelSetData(apt) = %+v, %v", got, err)
	}
	if err := s.DeleteIntelSet(ctx, "c2"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteIntelSet(ctx, "c2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DeleteIntelSet of a removed set = %v", err)
	}
	if sets, _ := s.IntelSets(ctx); len(sets) != 1 || sets[0].Source != "apt" {
		t.Errorf("after delete: %+v", sets)
	}
}
