package catalog

import (
	"maps"
	"path/filepath"
	"slices"
	"testing"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/detections/intel"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

// TestSchemasListsEveryServedTable checks that Schemas (the hunt page's
// schema browser) names exactly the tables a registry with an event store
// serves, columns included.
func TestSchemasListsEveryServedTable(t *testing.T) {
	kb, err := attack.Load("")
	if err != nil {
		t.Fatal(err)
	}
	st, err := eventstore.Open(filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	db, err := intel.Open(filepath.Join(t.TempDir(), intel.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	reg, err := New(Sources{ATTACK: kb, Events: st, Intel: db, OsqueryAlias: true})
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]int{}
	for _, tb := range reg.Tables() {
		served[tb.Name] = len(tb.Columns)
	}
	listed := map[string]int{}
	for _, tb := range Schemas(kb) {
		listed[tb.Name] = len(tb.Columns)
	}
	for name, cols := range served {
		if c, ok := listed[name]; !ok || c != cols {
			t.Errorf("table %s (%d columns) served but listed with %d columns (listed: %v)", name, cols, c, ok)
		}
	}
	for name := range listed {
		if _, ok := served[name]; !ok {
			t.Errorf("table %s listed but not served", name)
		}
	}
	for _, want := range []string{"process_events", OsqueryProcessEvents, "ioa_hits", "ioa_rules", "incidents", "incident_hits", "process_tree", "related_incidents", "attack_techniques", "ioc_hits", "intel_indicators"} {
		if _, ok := listed[want]; !ok {
			t.Errorf("%s not listed (have %v)", want, slices.Sorted(maps.Keys(listed)))
		}
	}
}
