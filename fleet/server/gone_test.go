package server

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/detections/packs"
	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/fleet/store/pgstore"
	"github.com/quarry-sec/quarry/internal/pgtest"
)

// eventItem is an event-format result log item of a pack query: one row
// with its action.
func eventItem(query string, at time.Time, counter int, action string, row any) map[string]any {
	return map[string]any{"name": "pack_" + packs.Name + "_" + query, "hostIdentifier": "h", "unixTime": at.Unix(),
		"epoch": 0, "counter": counter, "action": action, "columns": row}
}

// TestGoneIncidents: an incident the host merged into another comes only
// as a removed row; the fleet deletes it (that host's only) while the one
// it merged into shows its new state. A removed row of an incident ageing
// out of the query's window deletes nothing, nor does one of an incident
// changed in the same log, in either result-log form; a changed
// incident's removed row arriving before its added row makes it disappear
// only until the added row arrives. On SQLite, and on PostgreSQL when
// QUARRY_TEST_POSTGRES is set.
func TestGoneIncidents(t *testing.T) {
	t.Run("SQLite", func(t *testing.T) { testGoneIncidents(t, openSQLite(t)) })
	t.Run("PostgreSQL", func(t *testing.T) {
		dsn := os.Getenv("QUARRY_TEST_POSTGRES")
		if dsn == "" {
			t.Skip("PostgreSQL gone-incident test skipped: QUARRY_TEST_POSTGRES is not set (.ci/run sets it)")
		}
		st, err := pgstore.Open(context.Background(), pgtest.Schema(t, dsn))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		testGoneIncidents(t, st)
	})
}

func testGoneIncidents(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	key := f.enroll("host-a", "ubuntu")
	keyB := f.enroll("host-b", "ubuntu")
	now := f.clock.Now()
	send := func(key string, items ...any) {
		t.Helper()
		if code, out := f.osquery("log", map[string]any{"node_key": key, "log_type": "result", "data": items}); code != 200 {
			t.Fatalf("log: %d %v", code, out)
		}
	}
	// listed is the incidents of the fleet, as incident@host sorted.
	listed := func() string {
		t.Helper()
		code, out := f.api("GET", "/api/v1/incidents?limit=1000", nil)
		if code != 200 {
			t.Fatalf("incidents: %d %v", code, out)
		}
		var got []string
		for _, in := range out["incidents"].([]any) {
			in := in.(map[string]any)
			got = append(got, fmt.Sprint(in["incident_id"], "@", in["host_identifier"]))
		}
		sort.Strings(got)
		return strings.Join(got, " ")
	}
	detail := func(path string) (int, map[string]any) {
		t.Helper()
		return f.api("GET", path, nil)
	}

	// Host a: incidents A and B; C, last seen 25 hours ago (reported then);
	// D, last seen 23 h 10 min before the merge's log (inside the query's
	// window, outside the fleet's margin); host b: its own B.
	t0 := now.Add(-30 * time.Minute)
	a := incidentRow("inc-a", 7, now.Add(-40*time.Minute), now.Add(-35*time.Minute), "hit-1")
	b := incidentRow("inc-b", 5, now.Add(-33*time.Minute), now.Add(-32*time.Minute), "hit-2")
	c := incidentRow("inc-c", 3, now.Add(-25*time.Hour), now.Add(-25*time.Hour), "hit-3")
	dd := incidentRow("inc-d", 1, now.Add(-23*time.Hour-30*time.Minute), now.Add(-23*time.Hour-30*time.Minute), "hit-8")
	send(key,
		resultItem(packs.QueryIncidents, now.Add(-25*time.Hour+time.Minute), 1, []any{c}, nil),
		resultItem(packs.QueryHits, t0, 2, []any{
			hitRow("hit-1", "T1218.005", "defense-evasion", "high", now.Add(-35*time.Minute)),
			hitRow("hit-2", "T1059.001", "execution", "high", now.Add(-32*time.Minute)),
		}, nil),
		resultItem(packs.QueryIncidents, t0, 2, []any{a, b, dd}, nil),
		resultItem(packs.QueryIncidentTree, t0, 2, []any{
			treeRow("inc-a", "k-cmd", "", 0, 5888, "cmd.exe", 0, ""),
			treeRow("inc-a", "k-mshta", "k-cmd", 1, 10980, "mshta.exe", 1, "T1218.005"),
			treeRow("inc-b", "k-psh", "", 0, 9572, "powershell.exe", 1, "T1059.001"),
		}, nil))
	send(keyB, resultItem(packs.QueryIncidents, t0, 1, []any{
		incidentRow("inc-b", 4, now.Add(-time.Hour), now.Add(-time.Hour), "hit-9")}, nil))
	if got := listed(); got != "inc-a@host-a inc-b@host-a inc-b@host-b inc-c@host-a inc-d@host-a" {
		t.Fatalf("incidents before the merge: %s", got)
	}
	_, out := detail("/api/v1/incidents/inc-b?host=host-a")
	oldB := fmt.Sprint(out["id"])

	// Host b reports host a's incident A removed (an ID host b never had):
	// host a's stays.
	send(keyB, resultItem(packs.QueryIncidents, now.Add(-25*time.Minute), 2, nil, []any{a}))
	if got := listed(); got != "inc-a@host-a inc-b@host-a inc-b@host-b inc-c@host-a inc-d@host-a" {
		t.Fatalf("incidents after host b's removed rows: %s", got)
	}

	// A new hit links B's process to A's: A grows, B is merged into it and
	// comes only as a removed row; C and D age out of the window.
	t1 := now.Add(-20 * time.Minute)
	grown := incidentRow("inc-a", 9.5, now.Add(-40*time.Minute), now.Add(-21*time.Minute), "hit-1", "hit-2", "hit-4")
	send(key,
		resultItem(packs.QueryHits, t1, 3, []any{
			hitRow("hit-4", "T1105", "command-and-control", "high", now.Add(-21*time.Minute))}, nil),
		resultItem(packs.QueryIncidents, t1, 3, []any{grown}, []any{a, b, c, dd}),
		resultItem(packs.QueryIncidentTree, t1, 3, []any{
			treeRow("inc-a", "k-mshta", "k-cmd", 1, 10980, "mshta.exe", 1, "T1218.005"),
			treeRow("inc-a", "k-psh", "k-mshta", 2, 9572, "powershell.exe", 2, "T1059.001,T1105"),
		}, []any{
			treeRow("inc-b", "k-psh", "", 0, 9572, "powershell.exe", 1, "T1059.001"),
		}))
	if got := listed(); got != "inc-a@host-a inc-b@host-b inc-c@host-a inc-d@host-a" {
		t.Fatalf("incidents after the merge: %s, want B gone from host a only, aged-out C and D kept", got)
	}
	for _, path := range []string{"/api/v1/incidents/" + oldB, "/api/v1/incidents/inc-b?host=host-a"} {
		if code, _ := detail(path); code != 404 {
			t.Errorf("%s after the merge: %d, want 404", path, code)
		}
	}
	code, d := detail("/api/v1/incidents/inc-a")
	if code != 200 || d["score"] != 9.5 || d["hit_count"] != float64(3) || len(d["hits"].([]any)) != 3 {
		t.Fatalf("merged incident: %d %v", code, d)
	}
	var nodes []string
	for _, n := range d["tree"].([]any) {
		nodes = append(nodes, n.(map[string]any)["process_key"].(string))
	}
	if strings.Join(nodes, ",") != "k-cmd,k-mshta,k-psh" {
		t.Errorf("merged incident's tree: %v", nodes)
	}
	if code, d := detail("/api/v1/incidents/inc-b?host=host-b"); code != 200 || d["score"] != float64(4) {
		t.Errorf("host b's inc-b: %d %v", code, d)
	}
	// The merged-away incident's detections stay.
	if code, out := f.api("GET", "/api/v1/detections?host=host-a", nil); code != 200 || out["total"] != float64(3) {
		t.Errorf("host a detections after the merge: %d %v", code, out["total"])
	}

	// Event format: one row per item; the items of a run (name, epoch,
	// counter, time) are one result log. E is added, then changes (removed
	// and added rows of one run: kept, new state), then is deleted on the
	// host (removed only: gone).
	e := incidentRow("inc-e", 2, now.Add(-15*time.Minute), now.Add(-15*time.Minute), "hit-5")
	// (E's change keeps its last_seen: nothing but the log tells the
	// removed row from a gone incident's.)
	e2 := incidentRow("inc-e", 2.5, now.Add(-15*time.Minute), now.Add(-15*time.Minute), "hit-5", "hit-6")
	send(key, eventItem(packs.QueryIncidents, now.Add(-14*time.Minute), 4, "added", e))
	send(key,
		eventItem(packs.QueryIncidents, now.Add(-11*time.Minute), 5, "removed", e),
		eventItem(packs.QueryIncidents, now.Add(-11*time.Minute), 5, "added", e2))
	if code, d := detail("/api/v1/incidents/inc-e"); code != 200 || d["score"] != 2.5 {
		t.Fatalf("changed incident (event format): %d %v", code, d)
	}
	// The run's removed row alone in one request, its added row in the
	// next: gone in between, then back.
	e3 := incidentRow("inc-e", 3, now.Add(-15*time.Minute), now.Add(-9*time.Minute), "hit-5", "hit-6", "hit-7")
	send(key, eventItem(packs.QueryIncidents, now.Add(-8*time.Minute), 6, "removed", e2))
	if code, _ := detail("/api/v1/incidents/inc-e"); code != 404 {
		t.Errorf("incident whose added row is yet to come: %d, want 404", code)
	}
	send(key, eventItem(packs.QueryIncidents, now.Add(-8*time.Minute), 6, "added", e3))
	if code, d := detail("/api/v1/incidents/inc-e"); code != 200 || d["score"] != float64(3) {
		t.Fatalf("incident after its split log: %d %v", code, d)
	}
	send(key, eventItem(packs.QueryIncidents, now.Add(-5*time.Minute), 7, "removed", e3))
	if got := listed(); got != "inc-a@host-a inc-b@host-b inc-c@host-a inc-d@host-a" {
		t.Fatalf("incidents after E was removed (event format): %s", got)
	}
	// The same log sent again (its answer was lost) deletes nothing more.
	send(key, eventItem(packs.QueryIncidents, now.Add(-5*time.Minute), 7, "removed", e3))
	if got := listed(); got != "inc-a@host-a inc-b@host-b inc-c@host-a inc-d@host-a" {
		t.Fatalf("incidents after a resent removal: %s", got)
	}
}
