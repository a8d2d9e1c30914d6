package storetest

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/fleet/store"
)

// incident is a reported incident of the suite.
func incident(id string, score float64, first, last time.Time, hits ...string) store.Incident {
	return store.Incident{IncidentID: id, FirstSeen: first, LastSeen: last, Score: score, Severity: "high",
		Tactics: []string{"execution", "defense-evasion"}, Techniques: []string{"T1218.005", "T1059.001"},
		HitCount: int64(len(hits)), RootPID: 100, RootPath: "/bin/sh", Summary: "sh: " + id, HitIDs: hits,
		Reported: last.Add(time.Minute)}
}

func node(incidentID, key, parent string, depth int, hits int64, reported time.Time, techs ...string) store.IncidentNode {
	return store.IncidentNode{IncidentID: incidentID, ProcessKey: key, ParentKey: parent, Depth: depth,
		Relation: "descendant", PID: int64(100 + depth), PPID: int64(99 + depth), Path: "/bin/" + key,
		Cmdline: key + " -c x", Username: "alice", Start: base.Add(time.Duration(depth) * time.Second),
		HitCount: hits, Techniques: techs, Tactics: []string{}, Reported: reported}
}

// mshtaActivity is a process_tree activity as a host reports it.
const mshtaActivity = `{"network":{"count":4,"items":[{"time":1772442000,"summary":"connect tcp 10.0.0.5:50000 -> 203.0.113.7:443","eid":7,"techniques":["T1071"],"severity":"high"}]}}`

func incidentIDs(ins []store.Incident) string {
	var ids []string
	for _, in := range ins {
		ids = append(ids, in.IncidentID+"@"+in.HostIdentifier)
	}
	return strings.Join(ids, " ")
}

// testIncidents: incidents are stored once per (host, incident ID), follow
// the host's reports as they grow (hits replaced with them), ignore an
// older report and a repeat; tree nodes likewise per process; reads
// filter, page, order by score and join the hits to detections.
func testIncidents(t *testing.T, s store.Store) {
	a := enroll(t, s, "host-a", "ka", "linux")
	b := enroll(t, s, "host-b", "kb", "linux")
	first := incident("inc-1", 7, base, base, "hit-1")
	nodes := []store.IncidentNode{
		node("inc-1", "root", "", 0, 0, first.Reported),
		node("inc-1", "mshta", "root", 1, 1, first.Reported, "T1218.005"),
	}
	batch := &store.LogBatch{
		Detections: []store.Detection{
			detection("hit-1", "T1218.005", "defense-evasion", "high", base),
			detection("hit-1", "T1059.005", "execution", "high", base),
			detection("hit-9", "T1105", "command-and-control", "high", base), // in no incident
		},
		Incidents: []store.Incident{first}, IncidentNodes: nodes,
	}
	for range 2 { // sent again: stored once
		if err := s.AppendLogs(ctx, a.ID, batch); err != nil {
			t.Fatal(err)
		}
	}
	ins, total, err := s.Incidents(ctx, store.IncidentFilter{})
	if err != nil || total != 1 || len(ins) != 1 {
		t.Fatalf("Incidents = %d/%d, %v", len(ins), total, err)
	}
	got := ins[0]
	if got.ID == 0 || got.HostID != a.ID || got.HostIdentifier != "host-a" || got.Hostname != "host-a.local" ||
		got.IncidentID != "inc-1" || got.Score != 7 || got.HitCount != 1 || !got.FirstSeen.Equal(base) ||
		!reflect.DeepEqual(got.Tactics, []string{"execution", "defense-evasion"}) ||
		!reflect.DeepEqual(got.Techniques, []string{"T1218.005", "T1059.001"}) || got.RootPath != "/bin/sh" ||
		got.RootPID != 100 || got.Summary != "sh: inc-1" || got.Severity != "high" || !got.Reported.Equal(first.Reported) {
		t.Fatalf("stored incident = %+v", got)
	}
	id := got.ID

	// The incident grows: a later report replaces it, its hits and the
	// nodes it changes; a new node is added.
	grown := incident("inc-1", 9.5, base, base.Add(5*time.Minute), "hit-1", "hit-2")
	grownNodes := []store.IncidentNode{
		node("inc-1", "mshta", "root", 1, 2, grown.Reported, "T1218.005", "T1059.005"),
		node("inc-1", "powershell", "mshta", 2, 1, grown.Reported, "T1059.001"),
	}
	grownNodes[0].Activity = mshtaActivity
	if err := s.AppendLogs(ctx, a.ID, &store.LogBatch{Incidents: []store.Incident{grown}, IncidentNodes: grownNodes,
		Detections: []store.Detection{detection("hit-2", "T1059.001", "execution", "high", base.Add(5*time.Minute))}}); err != nil {
		t.Fatal(err)
	}
	// A late, older report (a queued log of an earlier run) changes nothing.
	stale := incident("inc-1", 3, base, base.Add(-time.Minute), "hit-0")
	staleNode := node("inc-1", "mshta", "root", 1, 0, stale.Reported)
	if err := s.AppendLogs(ctx, a.ID, &store.LogBatch{Incidents: []store.Incident{stale},
		IncidentNodes: []store.IncidentNode{staleNode}}); err != nil {
		t.Fatal(err)
	}
	in, err := s.IncidentByID(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if in.Score != 9.5 || in.HitCount != 2 || !in.LastSeen.Equal(base.Add(5*time.Minute)) || in.IncidentID != "inc-1" ||
		in.HostIdentifier != "host-a" {
		t.Fatalf("grown incident = %+v", in)
	}
	hits, err := s.IncidentHits(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) != 2 || hits[0].HitID != "hit-1" || hits[1].HitID != "hit-2" || len(hits[0].Detections) != 2 ||
		len(hits[1].Detections) != 1 || hits[1].Detections[0].TechniqueID != "T1059.001" ||
		hits[0].Detections[0].HostIdentifier != "host-a" || hits[0].Detections[0].RuleTitle == "" {
		t.Fatalf("IncidentHits = %+v", hits)
	}
	tree, err := s.IncidentTree(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, n := range tree {
		keys = append(keys, n.ProcessKey)
	}
	if strings.Join(keys, ",") != "root,mshta,powershell" {
		t.Fatalf("tree nodes %v", keys)
	}
	m := tree[1]
	if m.HitCount != 2 || !reflect.DeepEqual(m.Techniques, []string{"T1218.005", "T1059.005"}) || m.ParentKey != "root" ||
		m.Depth != 1 || m.PID != 101 || m.PPID != 100 || m.Cmdline != "mshta -c x" || m.Username != "alice" ||
		!m.Start.Equal(base.Add(time.Second)) || m.Exited || m.Relation != "descendant" {
		t.Fatalf("updated node = %+v", m)
	}
	if m.Activity != mshtaActivity || tree[0].Activity != "" {
		t.Fatalf("node activity = %q (root %q), want %q", m.Activity, tree[0].Activity, mshtaActivity)
	}
	if len(tree[0].Techniques) != 0 || tree[0].ParentKey != "" {
		t.Fatalf("root node = %+v", tree[0])
	}

	// The same incident ID from another host is another incident; a second
	// incident of host a with a lower score.
	other := incident("inc-1", 4, base.Add(time.Hour), base.Add(2*time.Hour), "hit-1")
	low := incident("inc-2", 2, base.Add(24*time.Hour), base.Add(25*time.Hour), "hit-3")
	if err := s.AppendLogs(ctx, b.ID, &store.LogBatch{Incidents: []store.Incident{other}}); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendLogs(ctx, a.ID, &store.LogBatch{Incidents: []store.Incident{low}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		f     store.IncidentFilter
		want  string
		total int
	}{
		{store.IncidentFilter{}, "inc-1@host-a inc-1@host-b inc-2@host-a", 3},
		{store.IncidentFilter{HostIDs: []string{a.ID}}, "inc-1@host-a inc-2@host-a", 2},
		{store.IncidentFilter{IncidentIDs: []string{"inc-1"}}, "inc-1@host-a inc-1@host-b", 2},
		{store.IncidentFilter{MinScore: 4}, "inc-1@host-a inc-1@host-b", 2},
		{store.IncidentFilter{MinScore: 4.5}, "inc-1@host-a", 1},
		// Overlap: last seen at or after since, first seen before until.
		{store.IncidentFilter{Since: base.Add(90 * time.Minute)}, "inc-1@host-b inc-2@host-a", 2},
		{store.IncidentFilter{Until: base.Add(time.Hour)}, "inc-1@host-a", 1},
		{store.IncidentFilter{Since: base.Add(time.Minute), Until: base.Add(24 * time.Hour)}, "inc-1@host-a inc-1@host-b", 2},
		{store.IncidentFilter{Limit: 1, Offset: 1}, "inc-1@host-b", 3},
	} {
		ins, total, err := s.Incidents(ctx, tc.f)
		if err != nil {
			t.Fatal(err)
		}
		if got := incidentIDs(ins); got != tc.want || total != tc.total {
			t.Errorf("Incidents(%+v) = %q (total %d), want %q (total %d)", tc.f, got, total, tc.want, tc.total)
		}
	}
	// Host b's incident has hit-1, which host b never reported as a
	// detection: the hit, without detections.
	bi, _, err := s.Incidents(ctx, store.IncidentFilter{HostIDs: []string{b.ID}})
	if err != nil || len(bi) != 1 {
		t.Fatalf("host b incidents: %v, %v", bi, err)
	}
	hits, err = s.IncidentHits(ctx, bi[0].ID)
	if err != nil || len(hits) != 1 || hits[0].HitID != "hit-1" || len(hits[0].Detections) != 0 {
		t.Fatalf("host b incident hits = %+v, %v", hits, err)
	}
	if tree, err := s.IncidentTree(ctx, bi[0].ID); err != nil || len(tree) != 0 {
		t.Fatalf("host b tree = %+v, %v", tree, err)
	}
	if _, err := s.IncidentByID(ctx, id+1000); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("IncidentByID(unknown) = %v, want ErrNotFound", err)
	}
}

// hostIncidents lists a host's incidents as incidentIDs does.
func hostIncidents(t *testing.T, s store.Store, hostID string) string {
	t.Helper()
	ins, _, err := s.Incidents(ctx, store.IncidentFilter{HostIDs: []string{hostID}})
	if err != nil {
		t.Fatal(err)
	}
	return incidentIDs(ins)
}

// testGoneIncidents: a gone incident is deleted with its hits and tree
// nodes, on its host only, its detections kept; a newer stored state (last
// seen or reported later) is kept; a later report stores it again; in one
// group commit the order of the requests does not matter.
func testGoneIncidents(t *testing.T, s store.Store) {
	a := enroll(t, s, "host-a", "ka", "linux")
	b := enroll(t, s, "host-b", "kb", "linux")
	incA := incident("inc-a", 7, base, base, "hit-1")
	incB := incident("inc-b", 5, base, base.Add(time.Minute), "hit-2")
	batch := &store.LogBatch{
		Detections: []store.Detection{
			detection("hit-1", "T1218.005", "defense-evasion", "high", base),
			detection("hit-2", "T1059.001", "execution", "high", base.Add(time.Minute)),
		},
		Incidents: []store.Incident{incA, incB},
		IncidentNodes: []store.IncidentNode{
			node("inc-a", "root", "", 0, 1, incA.Reported, "T1218.005"),
			node("inc-b", "psh", "", 0, 1, incB.Reported, "T1059.001"),
		},
	}
	if err := s.AppendLogs(ctx, a.ID, batch); err != nil {
		t.Fatal(err)
	}
	// Host b has an incident of the same ID.
	if err := s.AppendLogs(ctx, b.ID, &store.LogBatch{Incidents: []store.Incident{incB}}); err != nil {
		t.Fatal(err)
	}
	if got := hostIncidents(t, s, a.ID); got != "inc-a@host-a inc-b@host-a" {
		t.Fatalf("host a incidents = %q", got)
	}
	byID := func(host, incidentID string) *store.Incident {
		t.Helper()
		ins, _, err := s.Incidents(ctx, store.IncidentFilter{HostIDs: []string{host}, IncidentIDs: []string{incidentID}})
		if err != nil || len(ins) != 1 {
			t.Fatalf("incident %s of %s: %v, %v", incidentID, host, ins, err)
		}
		return &ins[0]
	}
	oldB := byID(a.ID, "inc-b").ID

	// A removal older than the stored state changes nothing: last seen
	// earlier, or reported earlier.
	at := base.Add(10 * time.Minute)
	for _, g := range []store.GoneIncident{
		{IncidentID: "inc-b", LastSeen: incB.LastSeen.Add(-time.Second), Reported: at},
		{IncidentID: "inc-b", LastSeen: incB.LastSeen, Reported: incB.Reported.Add(-time.Second)},
		{IncidentID: "inc-x", LastSeen: base, Reported: at}, // never stored
	} {
		if err := s.AppendLogs(ctx, a.ID, &store.LogBatch{GoneIncidents: []store.GoneIncident{g}}); err != nil {
			t.Fatal(err)
		}
	}
	if got := hostIncidents(t, s, a.ID); got != "inc-a@host-a inc-b@host-a" {
		t.Fatalf("after older removals, host a incidents = %q", got)
	}

	// B merged into A: A grows, B is gone.
	grownA := incident("inc-a", 9, base, base.Add(2*time.Minute), "hit-1", "hit-2")
	grownA.Reported = at
	if err := s.AppendLogs(ctx, a.ID, &store.LogBatch{Incidents: []store.Incident{grownA},
		IncidentNodes: []store.IncidentNode{node("inc-a", "psh", "root", 1, 1, at, "T1059.001")},
		GoneIncidents: []store.GoneIncident{{IncidentID: "inc-b", LastSeen: incB.LastSeen, Reported: at}}}); err != nil {
		t.Fatal(err)
	}
	if got := hostIncidents(t, s, a.ID); got != "inc-a@host-a" {
		t.Fatalf("after the merge, host a incidents = %q", got)
	}
	if got := hostIncidents(t, s, b.ID); got != "inc-b@host-b" {
		t.Fatalf("after host a's merge, host b incidents = %q", got)
	}
	if _, err := s.IncidentByID(ctx, oldB); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("IncidentByID(gone) = %v, want ErrNotFound", err)
	}
	if hits, err := s.IncidentHits(ctx, oldB); err != nil || len(hits) != 0 {
		t.Fatalf("IncidentHits(gone) = %+v, %v", hits, err)
	}
	if in := byID(a.ID, "inc-a"); in.Score != 9 || in.HitCount != 2 {
		t.Fatalf("grown incident = %+v", in)
	}
	tree, err := s.IncidentTree(ctx, byID(a.ID, "inc-a").ID)
	if err != nil || len(tree) != 2 {
		t.Fatalf("grown incident tree = %+v, %v", tree, err)
	}
	if ds, total, err := s.Detections(ctx, store.DetectionFilter{HostIDs: []string{a.ID}}); err != nil || total != 2 {
		t.Fatalf("detections after the merge = %+v (%d), %v", ds, total, err)
	}

	// The added row of a changed incident after its removed row (a log
	// split over two requests; same log time): stored again, without the
	// hits and nodes deleted with it.
	readded := incident("inc-b", 6, base, base.Add(3*time.Minute), "hit-2")
	readded.Reported = at
	if err := s.AppendLogs(ctx, a.ID, &store.LogBatch{Incidents: []store.Incident{readded}}); err != nil {
		t.Fatal(err)
	}
	in := byID(a.ID, "inc-b")
	if in.Score != 6 || !in.LastSeen.Equal(readded.LastSeen) {
		t.Fatalf("re-added incident = %+v", in)
	}
	if tree, err := s.IncidentTree(ctx, in.ID); err != nil || len(tree) != 0 {
		t.Fatalf("re-added incident's tree = %+v, %v; the gone incident's nodes were not deleted", tree, err)
	}
	hits, err := s.IncidentHits(ctx, in.ID)
	if err != nil || len(hits) != 1 || hits[0].HitID != "hit-2" || len(hits[0].Detections) != 1 {
		t.Fatalf("re-added incident's hits = %+v, %v", hits, err)
	}

	// In one group commit, a removal and the newer state of another
	// request, in either order: the newer state stays.
	later := base.Add(20 * time.Minute)
	newer := incident("inc-b", 8, base, base.Add(15*time.Minute), "hit-2")
	newer.Reported = later
	gone := store.GoneIncident{IncidentID: "inc-b", LastSeen: readded.LastSeen, Reported: later}
	add := &store.LogBatch{Incidents: []store.Incident{newer}}
	del := &store.LogBatch{GoneIncidents: []store.GoneIncident{gone}}
	for _, order := range [][]*store.LogBatch{{del, add}, {add, del}} {
		if err := s.AppendHostLogs(ctx, []store.HostLogs{{HostID: a.ID, Batch: order[0]},
			{HostID: a.ID, Batch: order[1]}}); err != nil {
			t.Fatal(err)
		}
		if in := byID(a.ID, "inc-b"); in.Score != 8 {
			t.Fatalf("incident after a group commit with its removal = %+v", in)
		}
	}
	// Its removal at its own state deletes it.
	if err := s.AppendLogs(ctx, a.ID, &store.LogBatch{GoneIncidents: []store.GoneIncident{
		{IncidentID: "inc-b", LastSeen: newer.LastSeen, Reported: later.Add(time.Minute)}}}); err != nil {
		t.Fatal(err)
	}
	if got := hostIncidents(t, s, a.ID); got != "inc-a@host-a" {
		t.Fatalf("after the second removal, host a incidents = %q", got)
	}
}
