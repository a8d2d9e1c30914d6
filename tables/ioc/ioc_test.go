package ioc_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/detections/intel"
	"github.com/quarry-sec/quarry/extension/osqueryext"
	"github.com/quarry-sec/quarry/extension/osqueryext/osquerytest"
	"github.com/quarry-sec/quarry/extension/sqlengine"
	"github.com/quarry-sec/quarry/tables"
	"github.com/quarry-sec/quarry/tables/ioc"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

var now = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// fill loads a small feed (one expired indicator) and stores the hits of
// two events.
func fill(t *testing.T) (*intel.DB, *eventstore.Store, *intel.Linker) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := intel.Open(filepath.Join(dir, intel.FileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st, err := eventstore.Open(eventstore.Path(dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	db.SetClock(func() time.Time { return now })
	kb, err := attack.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	l := intel.NewLinker(kb)
	bundle := `{"type": "bundle", "id": "bundle--1", "objects": [
	 {"type": "indicator", "id": "indicator--1", "pattern": "[domain-name:value = 'evil.example'] OR [ipv4-addr:value = '192.0.2.0/24']", "pattern_type": "stix", "confidence": 90},
	 {"type": "indicator", "id": "indicator--2", "pattern": "[domain-name:value = 'old.example']", "pattern_type": "stix", "valid_until": "2026-01-01T00:00:00Z"},
	 {"type": "intrusion-set", "id": "intrusion-set--1", "name": "Cozy Bear"},
	 {"type": "relationship", "id": "relationship--1", "relationship_type": "indicates", "source_ref": "indicator--1", "target_ref": "intrusion-set--1"}]}`
	f, err := intel.Read(strings.NewReader(bundle), "b.json", "", intel.Options{Source: "vendor", Now: now.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	l.ResolveFeed(f)
	if err := db.Store(ctx, f, false); err != nil {
		t.Fatal(err)
	}
	m, err := db.Matcher(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var hits []telemetry.IOCSighting
	for i, fields := range []map[string]string{
		{"QueryName": "www.evil.example"},
		{"DestinationIp": "192.0.2.9"},
		{"QueryName": "old.example"},
	} {
		ev := telemetry.NewEvent(telemetry.KindOther, telemetry.SourceSysmon)
		ev.Time, ev.Host, ev.PID = now.Add(time.Duration(i)*time.Minute), fmt.Sprintf("h%d", i), int64(100+i)
		ev.Fields = telemetry.FieldsFromMap(fields)
		hits = append(hits, intel.NewSightings(&ev, int64(i+1), m.Match(&ev, nil), l, now)...)
	}
	if len(hits) != 2 {
		t.Fatalf("%d hits, want 2 (the expired indicator does not match)", len(hits))
	}
	if _, err := st.SaveSightings(ctx, hits, nil); err != nil {
		t.Fatal(err)
	}
	return db, st, l
}

func queries() map[string]string {
	return map[string]string{
		"SELECT count(*) FROM intel_indicators":                                                    "3",
		"SELECT count(*) FROM intel_indicators WHERE expired = 1":                                  "1",
		"SELECT groups FROM intel_indicators WHERE indicator = 'evil.example'":                     "G0016 APT29",
		"SELECT confidence FROM intel_indicators WHERE type = 'cidr'":                              "90",
		"SELECT count(*) FROM ioc_hits":                                                            "2",
		"SELECT matched_value FROM ioc_hits WHERE indicator = '192.0.2.0/24'":                      "192.0.2.9",
		"SELECT matched_field || ' ' || pid FROM ioc_hits WHERE host_identifier = 'h0'":            "QueryName 100",
		"SELECT count(*) FROM ioc_hits WHERE time >= " + fmt.Sprint(now.Unix()+1):                  "1",
		"SELECT substr(context, 1, 29) FROM ioc_hits WHERE indicator = 'evil.example'":             "linked to G0016 APT29 (uses T",
		"SELECT count(*) FROM ioc_hits WHERE host_identifier = 'nowhere'":                          "0",
		"SELECT count(*) FROM intel_indicators WHERE source = 'vendor' AND type IN ('domain','x')": "2",
	}
}

func TestTablesOnSQLiteEngine(t *testing.T) {
	db, st, l := fill(t)
	reg := tables.NewRegistry()
	if err := reg.Register(ioc.Hits(st, l), ioc.Indicators(db, l)); err != nil {
		t.Fatal(err)
	}
	e, err := sqlengine.Open(reg)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for q, want := range queries() {
		rows, err := e.Query(context.Background(), q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		var got string
		rows.Next()
		rows.Scan(&got)
		rows.Close()
		if got != want {
			t.Errorf("%s = %q, want %q", q, got, want)
		}
	}
}

// The osquery extension serves the same rows (osquery applies the SQL; the
// extension answers generate calls with their constraints).
func TestTablesThroughOsqueryExtension(t *testing.T) {
	db, st, l := fill(t)
	reg := tables.NewRegistry()
	if err := reg.Register(ioc.Hits(st, l), ioc.Indicators(db, l)); err != nil {
		t.Fatal(err)
	}
	fake, err := osquerytest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	ext, err := osqueryext.New(reg, osqueryext.Config{Socket: fake.Socket})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ext.Run(ctx) }()
	defer func() { cancel(); <-done }()
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	r, err := fake.WaitRegistered(wctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := fake.Dial(wctx, r.UUID)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rows, err := c.Generate(ctx, "ioc_hits", `{"constraints":[{"name":"indicator","list":[{"op":2,"expr":"evil.example"}],"affinity":"TEXT"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0]["matched_value"] != "www.evil.example" || rows[0]["groups"] != "G0016 APT29" || rows[0]["confidence"] != "90" {
		t.Fatalf("ioc_hits for evil.example: %v", rows)
	}
	rows, err = c.Generate(ctx, "intel_indicators", `{"constraints":[]}`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rows {
		got = append(got, r["type"]+" "+r["indicator"]+" expired="+r["expired"])
	}
	slices.Sort(got)
	want := []string{"cidr 192.0.2.0/24 expired=0", "domain evil.example expired=0", "domain old.example expired=1"}
	if !slices.Equal(got, want) {
		t.Fatalf("intel_indicators %q, want %q", got, want)
	}
}
