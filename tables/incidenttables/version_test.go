package incidenttables_test

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/extension/sqlengine"
	"github.com/quarry-sec/quarry/tables"
	"github.com/quarry-sec/quarry/tables/incidenttables"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

// TestIncidentVersionAndDetection: an incident's tactics read in one ATT&CK
// version (v18.1 by default, v19 on request), and detected_at (when its
// hits were stored) selects it apart from its events' time.
func TestIncidentVersionAndDetection(t *testing.T) {
	found := t0.Add(40 * 24 * time.Hour)
	st, err := eventstore.Open(filepath.Join(t.TempDir(), "events.db"), eventstore.WithClock(func() time.Time { return found }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	if err := st.AppendHits(ctx, []telemetry.Hit{{HitID: "a", Time: t0, Host: "h"}, {HitID: "b", Time: t0, Host: "h"}}); err != nil {
		t.Fatal(err)
	}
	if err := st.ReplaceIncidents(ctx, nil, []eventstore.IncidentRecord{{IncidentID: "i", Host: "h", FirstSeen: t0, LastSeen: t0,
		Tactics: "execution,defense-evasion", Techniques: "T1059.004,T1562.001", HitIDs: []string{"a", "b"}}}); err != nil {
		t.Fatal(err)
	}
	kb, err := attack.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	reg := tables.NewRegistry()
	if err := reg.Register(incidenttables.Incidents(st, kb)); err != nil {
		t.Fatal(err)
	}
	e, err := sqlengine.Open(reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	one := func(q string) string {
		t.Helper()
		r := rows(t, e, q)
		if len(r) != 1 {
			t.Fatalf("%s: %v", q, r)
		}
		return r[0][0]
	}
	if got := one("SELECT tactics FROM incidents"); got != "execution,defense-evasion" {
		t.Errorf("18.1 tactics = %s", got)
	}
	if got := one("SELECT tactics FROM incidents WHERE attack_version = '19'"); got != "execution,defense-impairment" {
		t.Errorf("19 tactics = %s", got)
	}
	sec := strconv.FormatInt(found.Unix(), 10)
	if got := one("SELECT detected_at FROM incidents"); got != sec {
		t.Errorf("detected_at = %s, want %s", got, sec)
	}
	if got := one("SELECT count(*) FROM incidents WHERE detected_at >= " + sec); got != "1" {
		t.Errorf("detected since: %s", got)
	}
	if got := one("SELECT count(*) FROM incidents WHERE detected_at < " + sec); got != "0" {
		t.Errorf("detected before: %s", got)
	}
}
