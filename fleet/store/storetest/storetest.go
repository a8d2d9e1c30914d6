// Package storetest is the fleet store's test suite, run against every
// implementation (SQLite and PostgreSQL) by that implementation's tests.
package storetest

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/telemetry"
)

// Open returns a new, empty store for one test; the suite closes it.
type Open func(t *testing.T) store.Store

// Run runs the suite, each test on a store of its own.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		fn   func(*testing.T, store.Store)
	}{
		{"Enroll", testEnroll},
		{"Logs", testLogs},
		{"ResultDedupe", testResultDedupe},
		{"ResultDedupeConcurrent", testResultDedupeConcurrent},
		{"LargeBatch", testLargeBatch},
		{"DetectionDedupe", testDetectionDedupe},
		{"DetectionFilters", testDetectionFilters},
		{"CountDetections", testCountDetections},
		{"DetectionTime", testDetectionTime},
		{"Incidents", testIncidents},
		{"GoneIncidents", testGoneIncidents},
		{"Hunts", testHunts},
		{"HuntDeadline", testHuntDeadline},
		{"HuntNext", testHuntNext},
		{"HuntsConcurrent", testHuntsConcurrent},
		{"TokensAndPacks", testTokensAndPacks},
		{"ConcurrentWrites", testConcurrentWrites},
		{"HostSchemas", testHostSchemas},
		{"TouchHosts", testTouchHosts},
		{"ConcurrentEnroll", testConcurrentEnroll},
		{"IntelSets", testIntelSets},
		{"SandboxRuns", testSandboxRuns},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s)
		})
	}
}

var ctx = context.Background()

// base is the suite's clock: whole milliseconds, as stored.
var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func enroll(t *testing.T, s store.Store, ident, key, family string) *store.Host {
	t.Helper()
	h := &store.Host{NodeKey: key, HostIdentifier: ident, Hostname: ident + ".local", Platform: "ubuntu",
		Family: family, OSVersion: "24.04", OsqueryVersion: "5.12.1", EnrolledAt: base, LastSeen: base}
	if err := s.EnrollHost(ctx, h); err != nil {
		t.Fatalf("EnrollHost %s: %v", ident, err)
	}
	return h
}

func testEnroll(t *testing.T, s store.Store) {
	a := enroll(t, s, "host-a", "key-a1", "linux")
	if a.ID == "" {
		t.Fatal("EnrollHost left ID empty")
	}
	got, err := s.HostByNodeKey(ctx, "key-a1")
	if err != nil || got.ID != a.ID || got.OsqueryVersion != "5.12.1" || !got.EnrolledAt.Equal(base) {
		t.Fatalf("HostByNodeKey = %+v, %v", got, err)
	}
	if got.NodeKey != store.HashNodeKey("key-a1") { // stored hashed, not in clear
		t.Errorf("stored node key %q, want the hash %q", got.NodeKey, store.HashNodeKey("key-a1"))
	}
	if _, err := s.HostByNodeKey(ctx, store.HashNodeKey("key-a1")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the stored hash works as a node key: %v", err)
	}
	if _, err := s.HostByNodeKey(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown key: err = %v, want ErrNotFound", err)
	}
	// Re-enrolling the same identifier keeps the host, replaces the key.
	again := &store.Host{NodeKey: "key-a2", HostIdentifier: "host-a", Hostname: "renamed", QuarryVersion: "0.2.0",
		EnrolledAt: base.Add(time.Hour), LastSeen: base.Add(time.Hour)}
	if err := s.EnrollHost(ctx, again); err != nil {
		t.Fatal(err)
	}
	if again.ID != a.ID || !again.EnrolledAt.Equal(base) {
		t.Fatalf("re-enroll: ID %s enrolled %v, want %s %v", again.ID, again.EnrolledAt, a.ID, base)
	}
	if _, err := s.HostByNodeKey(ctx, "key-a1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("old key after re-enroll: err = %v", err)
	}
	enroll(t, s, "host-b", "key-b", "darwin")
	if err := s.TouchHost(ctx, a.ID, base.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	// An older touch never moves last_seen back.
	if err := s.TouchHost(ctx, a.ID, base); err != nil {
		t.Fatal(err)
	}
	hosts, err := s.Hosts(ctx)
	if err != nil || len(hosts) != 2 {
		t.Fatalf("Hosts = %d, %v", len(hosts), err)
	}
	if hosts[0].HostIdentifier != "host-a" || hosts[0].Hostname != "renamed" || hosts[0].QuarryVersion != "0.2.0" ||
		!hosts[0].LastSeen.Equal(base.Add(2*time.Hour)) {
		t.Fatalf("host-a = %+v", hosts[0])
	}
}

func testLogs(t *testing.T, s store.Store) {
	h := enroll(t, s, "host-a", "k", "linux")
	o := enroll(t, s, "host-b", "k2", "linux")
	b := &store.LogBatch{
		Results: []store.Result{
			{Name: "pack_p_users", Query: "users", Action: "added", Time: base, Columns: json.RawMessage(`{"u":"root"}`),
				Decorations: json.RawMessage(`{"hostname":"a"}`)},
			{Name: "pack_p_users", Query: "users", Action: "removed", Time: base.Add(time.Minute), Columns: json.RawMessage(`{"u":"bob"}`)},
			{Name: "uptime", Query: "uptime", Action: "snapshot", Time: base, Columns: json.RawMessage(`{"s":"1"}`)},
		},
		Statuses: []store.StatusLog{{Time: base, Severity: 1, Filename: "x.cpp", Line: 7, Message: "warn", Version: "5.12.1"}},
	}
	if err := s.AppendLogs(ctx, h.ID, b); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendLogs(ctx, o.ID, &store.LogBatch{Results: b.Results[:1]}); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendLogs(ctx, o.ID, &store.LogBatch{}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"users", "pack_p_users"} {
		rs, total, err := s.Results(ctx, store.ResultFilter{Query: q})
		if err != nil || total != 3 || len(rs) != 3 {
			t.Fatalf("Results(%s) = %d/%d, %v", q, len(rs), total, err)
		}
	}
	rs, total, err := s.Results(ctx, store.ResultFilter{Query: "users", HostID: h.ID, Since: base.Add(time.Second), Limit: 1})
	if err != nil || total != 1 || len(rs) != 1 || rs[0].Action != "removed" || string(rs[0].Columns) != `{"u":"bob"}` {
		t.Fatalf("Results filtered = %+v, %d, %v", rs, total, err)
	}
	rs, _, _ = s.Results(ctx, store.ResultFilter{Query: "users", HostID: h.ID, Until: base.Add(time.Second)})
	if len(rs) != 1 || string(rs[0].Decorations) != `{"hostname":"a"}` || !rs[0].Time.Equal(base) {
		t.Fatalf("Results until = %+v", rs)
	}
	st, err := s.StatusLogs(ctx, h.ID, 10)
	if err != nil || len(st) != 1 || st[0].Message != "warn" || st[0].Line != 7 || st[0].Severity != 1 {
		t.Fatalf("StatusLogs = %+v, %v", st, err)
	}
}

func detection(hit, tech, tactic, sev string, at time.Time) store.Detection {
	return store.Detection{Query: "quarry_ioa_hits", Hit: telemetry.Hit{HitID: hit, TechniqueID: tech, Tactic: tactic, Severity: sev, Time: at,
		RuleTitle: "rule " + tech}}
}

func testDetectionDedupe(t *testing.T, s store.Store) {
	h := enroll(t, s, "host-a", "k", "linux")
	first := detection("hit-1", "T1059.004", "execution", "high", base)
	first.Cmdline = ""
	if err := s.AppendLogs(ctx, h.ID, &store.LogBatch{Detections: []store.Detection{first}}); err != nil {
		t.Fatal(err)
	}
	again := detection("hit-1", "T1059.004", "execution", "low", base)
	again.Cmdline, again.PID, again.RuleAuthor = "sh -c id", 42, "Quarry"
	other := detection("hit-1", "T1105", "command-and-control", "high", base) // same hit, second technique
	if err := s.AppendLogs(ctx, h.ID, &store.LogBatch{Detections: []store.Detection{again, again, other}}); err != nil {
		t.Fatal(err)
	}
	ds, total, err := s.Detections(ctx, store.DetectionFilter{Techniques: []string{"T1059"}})
	if err != nil || total != 1 || len(ds) != 1 {
		t.Fatalf("Detections = %d/%d, %v", len(ds), total, err)
	}
	d := ds[0]
	if d.Severity != "high" || d.Cmdline != "sh -c id" || d.PID != 42 || d.RuleAuthor != "Quarry" ||
		d.HostIdentifier != "host-a" || d.Hostname != "host-a.local" || !d.Time.Equal(base) {
		t.Fatalf("merged detection = %+v", d)
	}
	if _, total, _ := s.Detections(ctx, store.DetectionFilter{}); total != 2 {
		t.Fatalf("all detections = %d, want 2", total)
	}
	// The same hit from another host is another detection.
	o := enroll(t, s, "host-b", "k2", "linux")
	if err := s.AppendLogs(ctx, o.ID, &store.LogBatch{Detections: []store.Detection{first}}); err != nil {
		t.Fatal(err)
	}
	if _, total, _ := s.Detections(ctx, store.DetectionFilter{}); total != 3 {
		t.Fatalf("all detections = %d, want 3", total)
	}
}

func seedDetections(t *testing.T, s store.Store) (a, b *store.Host) {
	t.Helper()
	a = enroll(t, s, "host-a", "ka", "linux")
	b = enroll(t, s, "host-b", "kb", "linux")
	day := 24 * time.Hour
	// Hit 6 is an IoC hit (an intel indicator's, kind ioc).
	ioc := detection("6", "T10030", "impact", "low", base.Add(2*day))
	ioc.RuleSource = telemetry.RuleSourceIntel
	if err := s.AppendLogs(ctx, a.ID, &store.LogBatch{Detections: []store.Detection{
		detection("1", "T1003", "credential-access", "high", base),
		detection("2", "T1003.001", "credential-access", "critical", base.Add(time.Hour)),
		detection("3", "T1003.008", "credential-access", "medium", base.Add(day)),
		detection("4", "T1059.004", "execution", "high", base.Add(day)),
	}}); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendLogs(ctx, b.ID, &store.LogBatch{Detections: []store.Detection{
		detection("5", "T1547.006", "persistence,privilege-escalation", "high", base.Add(2*day)),
		ioc, // not a sub-technique of T1003
	}}); err != nil {
		t.Fatal(err)
	}
	return a, b
}

func testDetectionFilters(t *testing.T, s store.Store) {
	a, b := seedDetections(t, s)
	day := 24 * time.Hour
	cases := []struct {
		name string
		f    store.DetectionFilter
		want []string // hit IDs, newest first
	}{
		{"all", store.DetectionFilter{}, []string{"6", "5", "4", "3", "2", "1"}},
		{"parent matches subs", store.DetectionFilter{Techniques: []string{"t1003"}}, []string{"3", "2", "1"}},
		{"sub matches itself", store.DetectionFilter{Techniques: []string{"T1003.001"}}, []string{"2"}},
		{"two techniques", store.DetectionFilter{Techniques: []string{"T1003.008", "T1059"}}, []string{"4", "3"}},
		{"tactic of several", store.DetectionFilter{Tactics: []string{"privilege-escalation"}}, []string{"5"}},
		{"tactic", store.DetectionFilter{Tactics: []string{"credential-access", "execution"}}, []string{"4", "3", "2", "1"}},
		{"severity", store.DetectionFilter{Severities: []string{"high", "CRITICAL"}}, []string{"5", "4", "2", "1"}},
		{"host", store.DetectionFilter{HostIDs: []string{b.ID}}, []string{"6", "5"}},
		{"since until", store.DetectionFilter{Since: base.Add(time.Hour), Until: base.Add(2 * day)}, []string{"4", "3", "2"}},
		{"combined", store.DetectionFilter{HostIDs: []string{a.ID}, Severities: []string{"high"}, Tactics: []string{"execution"}}, []string{"4"}},
		{"page", store.DetectionFilter{Limit: 2, Offset: 1}, []string{"5", "4"}},
		{"wildcards are literal", store.DetectionFilter{Tactics: []string{"%"}}, nil},
		{"kind ioc", store.DetectionFilter{Kind: telemetry.KindIOC}, []string{"6"}},
		{"kind ioa", store.DetectionFilter{Kind: telemetry.KindIOA}, []string{"5", "4", "3", "2", "1"}},
	}
	for _, tc := range cases {
		ds, total, err := s.Detections(ctx, tc.f)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var got []string
		for _, d := range ds {
			got = append(got, d.HitID)
			if want := map[bool]string{true: telemetry.KindIOC, false: telemetry.KindIOA}[d.HitID == "6"]; d.Kind != want {
				t.Errorf("%s: hit %s of kind %q, want %q", tc.name, d.HitID, d.Kind, want)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: hits %v, want %v", tc.name, got, tc.want)
		}
		if tc.f.Limit == 0 && total != len(tc.want) {
			t.Errorf("%s: total %d, want %d", tc.name, total, len(tc.want))
		}
		if tc.name == "page" && total != 6 {
			t.Errorf("page: total %d, want 6", total)
		}
	}
}

func testCountDetections(t *testing.T, s store.Store) {
	a, _ := seedDetections(t, s)
	counts, err := s.CountDetections(ctx, store.DetectionFilter{}, store.KeyHost)
	if err != nil || len(counts) != 2 || counts[0].Keys[0] != a.ID || counts[0].N != 4 || counts[1].N != 2 {
		t.Fatalf("by host = %+v, %v", counts, err)
	}
	counts, err = s.CountDetections(ctx, store.DetectionFilter{}, store.KeyDay)
	if err != nil || len(counts) != 3 {
		t.Fatalf("by day = %+v, %v", counts, err)
	}
	day0 := fmt.Sprint(base.Truncate(24 * time.Hour).Unix())
	found := false
	for _, c := range counts {
		if c.Keys[0] == day0 && c.N == 2 {
			found = true
		}
	}
	if !found {
		t.Fatalf("by day = %+v, want %s: 2", counts, day0)
	}
	counts, err = s.CountDetections(ctx, store.DetectionFilter{Techniques: []string{"T1003"}}, store.KeyTechnique, store.KeyRule)
	if err != nil || len(counts) != 3 || counts[0].N != 1 || counts[0].Keys[1] != "rule "+counts[0].Keys[0] {
		t.Fatalf("by technique, rule = %+v, %v", counts, err)
	}
	counts, err = s.CountDetections(ctx, store.DetectionFilter{}, store.KeyTactic)
	if err != nil || len(counts) != 4 || counts[0].Keys[0] != "credential-access" || counts[0].N != 3 {
		t.Fatalf("by tactic = %+v, %v", counts, err)
	}
	if _, err := s.CountDetections(ctx, store.DetectionFilter{}); err == nil {
		t.Fatal("CountDetections without a key: no error")
	}
}

func testHunts(t *testing.T, s store.Store) {
	a := enroll(t, s, "host-a", "ka", "linux")
	b := enroll(t, s, "host-b", "kb", "linux")
	c := enroll(t, s, "host-c", "kc", "linux")
	now := base
	h := &store.Hunt{ID: "hunt-1", SQL: "SELECT 1 AS one;", Targets: store.Targets{All: true}, Created: now,
		Deadline: now.Add(time.Hour)}
	if err := s.CreateHunt(ctx, h, []string{a.ID, b.ID, c.ID}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Hunt(ctx, "hunt-1")
	if err != nil || got.SQL != h.SQL || !got.Targets.All || !got.Deadline.Equal(h.Deadline) {
		t.Fatalf("Hunt = %+v, %v", got, err)
	}
	if _, err := s.Hunt(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown hunt: %v", err)
	}
	// Every hunt due taken: the host may take one next when this one is
	// due again, a resend interval (a minute) from now.
	taken, next, err := s.TakeHunts(ctx, a.ID, now, now.Add(-time.Minute))
	if err != nil || len(taken) != 1 || taken[0].SQL != h.SQL || !next.Equal(now.Add(time.Minute)) {
		t.Fatalf("TakeHunts = %+v, next %v, %v; want hunt-1, next %v", taken, next, err, now.Add(time.Minute))
	}
	// Sent: not again until resendBefore passes the send, which is when
	// the host may take it next (61 s after the send, with a resend
	// interval of 61 s).
	if taken, next, _ := s.TakeHunts(ctx, a.ID, now.Add(time.Second), now.Add(-time.Minute)); len(taken) != 0 ||
		!next.Equal(now.Add(61*time.Second)) {
		t.Fatalf("TakeHunts again = %+v, next %v; want none, next %v", taken, next, now.Add(61*time.Second))
	}
	if taken, _, _ := s.TakeHunts(ctx, a.ID, now.Add(2*time.Minute), now.Add(time.Minute)); len(taken) != 1 {
		t.Fatalf("TakeHunts after resend interval = %+v", taken)
	}
	rows := []json.RawMessage{json.RawMessage(`{"one":"1"}`), json.RawMessage(`{"one":"2"}`)}
	ok, err := s.AnswerHunt(ctx, "hunt-1", a.ID, store.Answer{Rows: rows, At: now.Add(time.Minute)})
	if err != nil || !ok {
		t.Fatalf("AnswerHunt = %v, %v", ok, err)
	}
	if ok, _ := s.AnswerHunt(ctx, "hunt-1", a.ID, store.Answer{Rows: rows, At: now.Add(time.Minute)}); ok {
		t.Fatal("second answer accepted")
	}
	if taken, next, _ := s.TakeHunts(ctx, a.ID, now.Add(10*time.Minute), now.Add(9*time.Minute)); len(taken) != 0 || !next.IsZero() {
		t.Fatalf("answered hunt taken again: %+v, next %v (want none: nothing left to take)", taken, next)
	}
	ok, err = s.AnswerHunt(ctx, "hunt-1", b.ID, store.Answer{Status: 1, Message: "no such table: nope", At: now.Add(time.Minute)})
	if err != nil || !ok {
		t.Fatalf("AnswerHunt error = %v, %v", ok, err)
	}
	if ok, _ := s.AnswerHunt(ctx, "hunt-1", "not-a-target", store.Answer{At: now}); ok {
		t.Fatal("answer of a non-target accepted")
	}
	hosts, err := s.HuntHosts(ctx, "hunt-1")
	if err != nil || len(hosts) != 3 {
		t.Fatalf("HuntHosts = %+v, %v", hosts, err)
	}
	want := []struct{ ident, status, msg string }{
		{"host-a", store.HuntAnswered, ""}, {"host-b", store.HuntError, "no such table: nope"}, {"host-c", store.HuntPending, ""}}
	for i, w := range want {
		hh := hosts[i]
		if hh.HostIdentifier != w.ident || hh.Status != w.status || hh.Message != w.msg {
			t.Errorf("host %d = %+v, want %+v", i, hh, w)
		}
	}
	if hosts[0].Rows != 2 || hosts[0].SentAt.IsZero() || !hosts[0].AnsweredAt.Equal(now.Add(time.Minute)) {
		t.Errorf("host-a = %+v", hosts[0])
	}
	got2, err := s.HuntRows(ctx, "hunt-1", 10, 0)
	if err != nil || len(got2) != 2 || got2[0].HostID != a.ID || string(got2[1].Columns) != `{"one":"2"}` {
		t.Fatalf("HuntRows = %+v, %v", got2, err)
	}
	if page, _ := s.HuntRows(ctx, "hunt-1", 1, 1); len(page) != 1 || string(page[0].Columns) != `{"one":"2"}` {
		t.Fatalf("HuntRows page = %+v", page)
	}
	counts, nrows, err := s.HuntCounts(ctx, "hunt-1")
	if err != nil || nrows != 2 || len(counts) != 3 || counts[store.HuntAnswered] != 1 || counts[store.HuntError] != 1 ||
		counts[store.HuntPending] != 1 {
		t.Fatalf("HuntCounts = %v, %d rows, %v", counts, nrows, err)
	}
	if counts, rows, err := s.HuntCounts(ctx, "no-such-hunt"); err != nil || len(counts) != 0 || rows != 0 {
		t.Fatalf("HuntCounts of no hunt = %v, %d, %v", counts, rows, err)
	}
	// Many targets (several statements' worth), one of them twice.
	var many []string
	for i := range 1201 {
		many = append(many, fmt.Sprintf("host-%04d", i))
	}
	many = append(many, "host-0007")
	if err := s.CreateHunt(ctx, &store.Hunt{ID: "hunt-many", SQL: "SELECT 1;", Targets: store.Targets{All: true}, Created: now,
		Deadline: now.Add(time.Hour)}, many); err != nil {
		t.Fatal(err)
	}
	if counts, _, err := s.HuntCounts(ctx, "hunt-many"); err != nil || counts[store.HuntPending] != 1201 {
		t.Fatalf("HuntCounts of a hunt of 1,201 hosts = %v, %v", counts, err)
	}
}

func testHuntDeadline(t *testing.T, s store.Store) {
	a := enroll(t, s, "host-a", "ka", "linux")
	h := &store.Hunt{ID: "hunt-2", SQL: "SELECT 2;", Targets: store.Targets{Hosts: []string{"host-a"}}, Created: base,
		Deadline: base.Add(time.Minute)}
	if err := s.CreateHunt(ctx, h, []string{a.ID}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.ActiveHunts(ctx, base); err != nil || n != 1 {
		t.Fatalf("ActiveHunts before the deadline = %d, %v; want 1", n, err)
	}
	late := base.Add(2 * time.Minute)
	if n, err := s.ActiveHunts(ctx, late); err != nil || n != 0 {
		t.Fatalf("ActiveHunts after the deadline = %d, %v; want 0", n, err)
	}
	if taken, _, _ := s.TakeHunts(ctx, a.ID, late, late); len(taken) != 0 {
		t.Fatalf("expired hunt taken: %+v", taken)
	}
	if ok, _ := s.AnswerHunt(ctx, "hunt-2", a.ID, store.Answer{At: late}); ok {
		t.Fatal("answer after the deadline accepted")
	}
	hosts, _ := s.HuntHosts(ctx, "hunt-2")
	if len(hosts) != 1 || hosts[0].Status != store.HuntPending {
		t.Fatalf("HuntHosts = %+v", hosts)
	}
}

// A host taking a new hunt while another it was handed is not yet due
// again may take one next when that one is due: the earlier of the two.
func testHuntNext(t *testing.T, s store.Store) {
	a := enroll(t, s, "host-a", "ka", "linux")
	resend := time.Minute
	for i, at := range []time.Time{base, base.Add(20 * time.Second)} {
		id := fmt.Sprintf("hunt-next-%d", i)
		if err := s.CreateHunt(ctx, &store.Hunt{ID: id, SQL: "SELECT 1;", Targets: store.Targets{All: true}, Created: at,
			Deadline: base.Add(time.Hour)}, []string{a.ID}); err != nil {
			t.Fatal(err)
		}
		taken, next, err := s.TakeHunts(ctx, a.ID, at, at.Add(-resend))
		if err != nil || len(taken) != 1 || taken[0].ID != id || !next.Equal(base.Add(resend)) {
			t.Fatalf("TakeHunts at %v = %+v, next %v, %v; want %s, next %v", at, taken, next, err, id, base.Add(resend))
		}
	}
	// Both due again once the first is: both taken, next a minute later.
	at := base.Add(resend + 30*time.Second)
	taken, next, err := s.TakeHunts(ctx, a.ID, at, at.Add(-resend))
	if err != nil || len(taken) != 2 || !next.Equal(at.Add(resend)) {
		t.Fatalf("TakeHunts at %v = %+v, next %v, %v; want both, next %v", at, taken, next, err, at.Add(resend))
	}
}

func testTokensAndPacks(t *testing.T, s store.Store) {
	if ok, err := s.TokenExists(ctx, "h1"); err != nil || ok {
		t.Fatalf("TokenExists before = %v, %v", ok, err)
	}
	if err := s.CreateToken(ctx, "analyst", "h1"); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.TokenExists(ctx, "h1"); err != nil || !ok {
		t.Fatalf("TokenExists = %v, %v", ok, err)
	}
	hashA, hashB := store.HashNodeKey("token a"), store.HashNodeKey("token b") // any hex hashes
	if err := s.CreateToken(ctx, "alice", hashA); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateToken(ctx, "bob", hashB); err != nil {
		t.Fatal(err)
	}
	toks, err := s.Tokens(ctx)
	if err != nil || len(toks) != 3 {
		t.Fatalf("Tokens = %+v, %v", toks, err)
	}
	names := map[string]string{}
	for _, tok := range toks {
		names[tok.Name] = tok.ID
		if len(tok.ID) > store.TokenIDLength || tok.Created.IsZero() {
			t.Errorf("token %+v: ID too long or no creation time", tok)
		}
	}
	if names["alice"] != hashA[:store.TokenIDLength] {
		t.Errorf("alice's ID %q, want %q", names["alice"], hashA[:store.TokenIDLength])
	}
	if err := s.RevokeToken(ctx, hashA[:4]); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoke by a 4-digit prefix: %v, want ErrNotFound", err)
	}
	if err := s.RevokeToken(ctx, names["alice"]); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeToken(ctx, names["alice"]); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoke twice: %v, want ErrNotFound", err)
	}
	if ok, _ := s.TokenExists(ctx, hashA); ok {
		t.Error("alice's token works after revocation")
	}
	if ok, _ := s.TokenExists(ctx, hashB); !ok {
		t.Error("bob's token was revoked too")
	}
	if err := s.PutPack(ctx, "extra", []byte(`{"queries":{}}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.PutPack(ctx, "extra", []byte(`{"queries":{"q":{"query":"SELECT 1;","interval":60}}}`)); err != nil {
		t.Fatal(err)
	}
	packs, err := s.Packs(ctx)
	if err != nil || len(packs) != 1 || string(packs["extra"]) != `{"queries":{"q":{"query":"SELECT 1;","interval":60}}}` {
		t.Fatalf("Packs = %v, %v", packs, err)
	}
	if err := s.DeletePack(ctx, "extra"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeletePack(ctx, "extra"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DeletePack missing = %v", err)
	}
}

func testConcurrentWrites(t *testing.T, s store.Store) {
	const writers, batches = 8, 20
	hosts := make([]*store.Host, writers)
	for i := range hosts {
		hosts[i] = enroll(t, s, fmt.Sprintf("host-%d", i), fmt.Sprintf("k%d", i), "linux")
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range batches {
				b := &store.LogBatch{
					Results: []store.Result{{Name: "q", Query: "q", Action: "added", Time: base, Counter: int64(j),
						Columns: json.RawMessage(`{}`)}},
					Detections: []store.Detection{detection(fmt.Sprintf("%d-%d", i, j), "T1059", "execution", "high", base)},
				}
				if err := s.AppendLogs(ctx, hosts[i].ID, b); err != nil {
					errs <- err
					return
				}
				if err := s.TouchHost(ctx, hosts[i].ID, base.Add(time.Duration(j)*time.Second)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if _, total, _ := s.Results(ctx, store.ResultFilter{Query: "q"}); total != writers*batches {
		t.Fatalf("results = %d, want %d", total, writers*batches)
	}
	if _, total, _ := s.Detections(ctx, store.DetectionFilter{}); total != writers*batches {
		t.Fatalf("detections = %d, want %d", total, writers*batches)
	}
}

// resultCount is how many rows of query name the store holds.
func resultCount(t *testing.T, s store.Store, name string) int {
	t.Helper()
	_, total, err := s.Results(ctx, store.ResultFilter{Query: name, Limit: 1})
	if err != nil {
		t.Fatalf("Results(%s): %v", name, err)
	}
	return total
}

func row(name, action string, counter int64, at time.Time, cols string) store.Result {
	return store.Result{Name: name, Query: name, Action: action, Time: at, Epoch: 7, Counter: counter,
		Columns: json.RawMessage(cols)}
}

// testResultDedupe: a log request sent again (its answer lost) stores no
// row twice, while every genuinely new row — another run, another host,
// another action, a counter restarted at another time, an identical row
// twice in one log — is stored.
func testResultDedupe(t *testing.T, s store.Store) {
	h := enroll(t, s, "host-a", "ka", "linux")
	o := enroll(t, s, "host-b", "kb", "linux")
	first := &store.LogBatch{Results: []store.Result{
		// Batch diffResults: two rows added (one of them twice: a query
		// may return a row twice), one removed.
		row("procs", "added", 3, base, `{"pid":"1"}`),
		row("procs", "added", 3, base, `{"pid":"1"}`),
		row("procs", "added", 3, base, `{"pid":"2"}`),
		row("procs", "removed", 3, base, `{"pid":"9"}`),
		// A snapshot.
		row("users", "snapshot", 0, base, `{"u":"root"}`),
		row("users", "snapshot", 0, base, `{"u":"bob"}`),
	}}
	if err := s.AppendLogs(ctx, h.ID, first); err != nil {
		t.Fatal(err)
	}
	if n := resultCount(t, s, "procs") + resultCount(t, s, "users"); n != 6 {
		t.Fatalf("first request: %d rows stored, want 6", n)
	}
	// The same request again (a retry), alone and inside a group commit
	// with another host's logs and a second copy of itself.
	if err := s.AppendLogs(ctx, h.ID, first); err != nil {
		t.Fatal(err)
	}
	other := &store.LogBatch{Results: []store.Result{row("procs", "added", 3, base, `{"pid":"1"}`)}}
	if err := s.AppendHostLogs(ctx, []store.HostLogs{{HostID: h.ID, Batch: first}, {HostID: o.ID, Batch: other},
		{HostID: h.ID, Batch: first}}); err != nil {
		t.Fatal(err)
	}
	if n := resultCount(t, s, "procs") + resultCount(t, s, "users"); n != 7 {
		t.Fatalf("after retries: %d rows stored, want 7 (6 + host-b's one)", n)
	}
	rs, _, err := s.Results(ctx, store.ResultFilter{Query: "procs", HostID: h.ID, Limit: 10})
	if err != nil || len(rs) != 4 {
		t.Fatalf("procs of host-a = %d, %v", len(rs), err)
	}
	pid1 := 0
	for _, r := range rs {
		if r.Epoch != 7 || r.Counter != 3 {
			t.Errorf("row %s: epoch %d counter %d, want 7 and 3", r.Columns, r.Epoch, r.Counter)
		}
		if string(r.Columns) == `{"pid":"1"}` {
			pid1++
		}
	}
	if pid1 != 2 {
		t.Errorf("the row returned twice by one run is stored %d times, want 2", pid1)
	}

	// A retry that carries more than the first attempt (event format: one
	// row per item, the client batching differently the second time)
	// stores only what is new.
	ev := []store.Result{
		row("events", "added", 11, base, `{"e":"a"}`),
		row("events", "added", 11, base, `{"e":"b"}`),
	}
	if err := s.AppendLogs(ctx, h.ID, &store.LogBatch{Results: ev[:1]}); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendLogs(ctx, h.ID, &store.LogBatch{Results: ev}); err != nil {
		t.Fatal(err)
	}
	if n := resultCount(t, s, "events"); n != 2 {
		t.Fatalf("event-format retry with one more row: %d rows, want 2", n)
	}

	// Genuinely new rows that share parts of the key are all stored.
	fresh := []store.Result{
		row("procs", "added", 4, base.Add(10*time.Second), `{"pid":"1"}`), // the next run
		row("procs", "removed", 3, base, `{"pid":"2"}`),                   // same run, other action
		row("procs", "added", 3, base.Add(time.Hour), `{"pid":"1"}`),      // counter restarted (query changed)
		{Name: "procs", Query: "procs", Action: "added", Time: base, Epoch: 8, Counter: 3, // a new epoch
			Columns: json.RawMessage(`{"pid":"1"}`)},
	}
	for i, r := range fresh {
		before := resultCount(t, s, "procs")
		if err := s.AppendLogs(ctx, h.ID, &store.LogBatch{Results: []store.Result{r}}); err != nil {
			t.Fatal(err)
		}
		if after := resultCount(t, s, "procs"); after != before+1 {
			t.Errorf("new row %d (%s %s counter %d epoch %d) not stored: %d rows, then %d", i, r.Action, r.Columns,
				r.Counter, r.Epoch, before, after)
		}
	}
}

// testResultDedupeConcurrent: the same request arriving at once on several
// connections (a retry racing its first attempt, or two replicas) is
// stored once.
func testResultDedupeConcurrent(t *testing.T, s store.Store) {
	h := enroll(t, s, "host-a", "ka", "linux")
	var rs []store.Result
	for i := range 50 {
		rs = append(rs, row("q", "added", 1, base, fmt.Sprintf(`{"i":"%d"}`, i)))
	}
	b := &store.LogBatch{Results: rs}
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.AppendLogs(ctx, h.ID, b)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := resultCount(t, s, "q"); n != 50 {
		t.Fatalf("%d rows stored, want 50", n)
	}
}

// Legacy returns a database at the first schema version (raw, closed by
// the caller's cleanup) and a function opening it as a store, which
// migrates it to the newest version.
type Legacy func(t *testing.T) (raw *sql.DB, reopen func() store.Store)

// RunUpgrade checks that migrating a store from the first schema version
// keeps every result row it held — duplicates a retry left included, as
// that schema could not tell them apart — and de-duplicates from then on.
func RunUpgrade(t *testing.T, legacy Legacy) {
	raw, reopen := legacy(t)
	for _, q := range []string{
		`INSERT INTO hosts (id, node_key, host_identifier, enrolled_at, last_seen) VALUES ('h1', 'k1', 'host-a', 0, 0)`,
		`INSERT INTO results (host_id, name, query, action, time, columns_json) VALUES ('h1', 'q', 'q', 'added', 1000, '{"a":"1"}')`,
		`INSERT INTO results (host_id, name, query, action, time, columns_json) VALUES ('h1', 'q', 'q', 'added', 1000, '{"a":"1"}')`,
		`INSERT INTO detections (host_id, hit_id, time, query, rule_id, rule_title, rule_author, rule_source, technique_id,
  technique_name, tactic, severity, confidence, description, recommendations, eid, pid, path, cmdline, parent_path,
  username, source, received_at) VALUES ('h1', 'hit-old', 1000, 'q', 'r', 'r', '', '', 'T1059', '', 'execution',
  'high', '', '', '', 0, 0, '', '', '', '', '', 5000)`,
	} {
		if _, err := raw.ExecContext(ctx, q); err != nil {
			t.Fatalf("version 1 data: %v", err)
		}
	}
	s := reopen()
	defer s.Close()
	if n := resultCount(t, s, "q"); n != 2 {
		t.Fatalf("after the upgrade: %d rows, want the 2 stored before", n)
	}
	// A detection stored before detection times is detected when received.
	ds, _, err := s.Detections(ctx, store.DetectionFilter{})
	if err != nil || len(ds) != 1 || !ds[0].DetectedAt.Equal(time.UnixMilli(5000)) || !ds[0].Time.Equal(time.UnixMilli(1000)) {
		t.Fatalf("detection after the upgrade: %+v, %v", ds, err)
	}
	// The node key stored in clear before version 6 is hashed, and works.
	if h, err := s.HostByNodeKey(ctx, "k1"); err != nil || h.ID != "h1" || h.NodeKey != store.HashNodeKey("k1") {
		t.Fatalf("host by its pre-upgrade key: %+v, %v", h, err)
	}
	var stored string
	if err := raw.QueryRowContext(ctx, `SELECT node_key FROM hosts WHERE id = 'h1'`).Scan(&stored); err != nil || stored == "k1" {
		t.Fatalf("stored node key after the upgrade: %q, %v", stored, err)
	}
	r := store.Result{Name: "q", Query: "q", Action: "added", Time: time.UnixMilli(1000), Columns: json.RawMessage(`{"a":"1"}`)}
	for range 2 {
		if err := s.AppendLogs(ctx, "h1", &store.LogBatch{Results: []store.Result{r}}); err != nil {
			t.Fatal(err)
		}
	}
	if n := resultCount(t, s, "q"); n != 3 {
		t.Fatalf("one new row sent twice after the upgrade: %d rows, want 3", n)
	}
}

// testLargeBatch: a log request of hundreds of rows and detections (stored
// several to a statement) stores every one once, sent twice; a detection
// repeated later in the batch fills the fields its first report lacked.
func testLargeBatch(t *testing.T, s store.Store) {
	h := enroll(t, s, "host-a", "ka", "linux")
	b := &store.LogBatch{}
	for i := range 260 {
		b.Results = append(b.Results, row("big", "added", 1, base, fmt.Sprintf(`{"i":"%d"}`, i%250))) // 10 rows twice
	}
	for i := range 130 {
		d := detection(fmt.Sprintf("hit-%d", i%70), "T1059.004", "execution", "high", base)
		if i >= 70 {
			d.Cmdline = fmt.Sprintf("cmd %d", i%70) // the repeat of hit-(i-70) carries the command line
		} else {
			d.Cmdline = ""
		}
		b.Detections = append(b.Detections, d)
	}
	for range 2 {
		if err := s.AppendLogs(ctx, h.ID, b); err != nil {
			t.Fatal(err)
		}
	}
	if n := resultCount(t, s, "big"); n != 260 {
		t.Fatalf("%d rows stored, want 260", n)
	}
	ds, total, err := s.Detections(ctx, store.DetectionFilter{Limit: 1000})
	if err != nil || total != 70 {
		t.Fatalf("detections = %d, %v; want 70", total, err)
	}
	// The same in a group commit with another host and a repeat of the
	// first host's request.
	c := enroll(t, s, "host-c", "kc", "linux")
	if err := s.AppendHostLogs(ctx, []store.HostLogs{{HostID: h.ID, Batch: b}, {HostID: c.ID, Batch: b},
		{HostID: h.ID, Batch: b}}); err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{h.ID, c.ID} {
		if _, n, err := s.Results(ctx, store.ResultFilter{Query: "big", HostID: host, Limit: 1}); err != nil || n != 260 {
			t.Fatalf("rows of %s after the group: %d, %v; want 260", host, n, err)
		}
		if _, n, err := s.Detections(ctx, store.DetectionFilter{HostIDs: []string{host}, Limit: 1}); err != nil || n != 70 {
			t.Fatalf("detections of %s after the group: %d, %v; want 70", host, n, err)
		}
	}
	for _, d := range ds {
		var n int
		fmt.Sscanf(d.HitID, "hit-%d", &n)
		want := ""
		if n < 60 {
			want = fmt.Sprintf("cmd %d", n)
		}
		if d.Cmdline != want {
			t.Errorf("%s: cmdline %q, want %q", d.HitID, d.Cmdline, want)
		}
	}
}

// TouchHosts moves each host's last-seen time forward only (an older time
// is ignored), for more hosts than one statement takes.
func testTouchHosts(t *testing.T, s store.Store) {
	const n = 503
	seen := map[string]time.Time{}
	want := map[string]time.Time{}
	for i := range n {
		h := enroll(t, s, fmt.Sprintf("host-%03d", i), fmt.Sprintf("key-%03d", i), "linux")
		at := base.Add(time.Duration(i+1) * time.Minute)
		if i%7 == 3 {
			at = base.Add(-time.Hour) // older than stored: kept as it is
			want[h.ID] = base
		} else {
			want[h.ID] = at
		}
		seen[h.ID] = at
	}
	if err := s.TouchHosts(ctx, seen); err != nil {
		t.Fatal(err)
	}
	hosts, err := s.Hosts(ctx)
	if err != nil || len(hosts) != n {
		t.Fatalf("Hosts: %d, %v", len(hosts), err)
	}
	for _, h := range hosts {
		if !h.LastSeen.Equal(want[h.ID]) {
			t.Errorf("%s last seen %v, want %v", h.HostIdentifier, h.LastSeen, want[h.ID])
		}
	}
}

// Hosts enrolling at once (written together by a group commit) each get
// their own ID, found by their key; an identifier enrolling several times
// at once keeps one ID, and exactly one of its keys works.
func testConcurrentEnroll(t *testing.T, s store.Store) {
	const hosts, dups = 100, 10
	var wg sync.WaitGroup
	got := make([]*store.Host, hosts+dups)
	errs := make([]error, hosts+dups)
	for i := range hosts + dups {
		ident, key := fmt.Sprintf("host-%03d", i), fmt.Sprintf("key-%03d", i)
		if i >= hosts {
			ident = "twice"
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := &store.Host{NodeKey: key, HostIdentifier: ident, Hostname: ident, Platform: "ubuntu", Family: "linux",
				EnrolledAt: base, LastSeen: base}
			errs[i] = s.EnrollHost(ctx, h)
			got[i] = h
		}()
	}
	wg.Wait()
	ids := map[string]bool{}
	for i := range hosts {
		if errs[i] != nil {
			t.Fatalf("enroll %d: %v", i, errs[i])
		}
		h, err := s.HostByNodeKey(ctx, fmt.Sprintf("key-%03d", i))
		if err != nil || h.ID != got[i].ID || h.HostIdentifier != got[i].HostIdentifier || got[i].ID == "" {
			t.Fatalf("host %d: enrolled as %q, its key finds %+v, %v", i, got[i].ID, h, err)
		}
		ids[h.ID] = true
	}
	if len(ids) != hosts {
		t.Fatalf("%d distinct IDs for %d hosts", len(ids), hosts)
	}
	working := 0
	for i := hosts; i < hosts+dups; i++ {
		if errs[i] != nil || got[i].ID != got[hosts].ID || ids[got[i].ID] {
			t.Fatalf("enroll twice %d: ID %q (first %q), %v", i, got[i].ID, got[hosts].ID, errs[i])
		}
		if h, err := s.HostByNodeKey(ctx, fmt.Sprintf("key-%03d", i)); err == nil {
			working++
			if h.ID != got[i].ID {
				t.Errorf("key %d finds host %s, want %s", i, h.ID, got[i].ID)
			}
		}
	}
	if working != 1 {
		t.Errorf("%d keys of the host enrolled %d times work, want 1", working, dups)
	}
}

// testHuntsConcurrent has many hosts take and answer a hunt at once, each
// twice (as two servers might): the writes of a group commit are merged
// into few statements, which must still hand each host its hunt once,
// take its answer once and keep the rows of each answer in order.
func testHuntsConcurrent(t *testing.T, s store.Store) {
	const n = 40
	var ids []string
	for i := range n {
		ids = append(ids, enroll(t, s, fmt.Sprintf("host-%02d", i), fmt.Sprintf("k%02d", i), "linux").ID)
	}
	now := base
	if err := s.CreateHunt(ctx, &store.Hunt{ID: "hunt-c", SQL: "SELECT 3;", Targets: store.Targets{All: true}, Created: now,
		Deadline: now.Add(time.Hour)}, ids); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	takenBy := map[string]int{}
	accepted := map[string]int{}
	var wg sync.WaitGroup
	for _, id := range append(append([]string{}, ids...), ids...) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			taken, _, err := s.TakeHunts(ctx, id, now, now.Add(-time.Minute))
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			takenBy[id] += len(taken)
			mu.Unlock()
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if takenBy[id] != 1 {
			t.Errorf("host %s took the hunt %d times, want once", id, takenBy[id])
		}
	}
	for i, id := range append(append([]string{}, ids...), ids...) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rows := []json.RawMessage{json.RawMessage(fmt.Sprintf(`{"host":%q,"n":1,"try":%d}`, id, i/n)),
				json.RawMessage(fmt.Sprintf(`{"host":%q,"n":2,"try":%d}`, id, i/n))}
			ok, err := s.AnswerHunt(ctx, "hunt-c", id, store.Answer{Rows: rows, At: now.Add(time.Second)})
			if err != nil {
				t.Error(err)
				return
			}
			if ok {
				mu.Lock()
				accepted[id]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if accepted[id] != 1 {
			t.Errorf("host %s: %d answers accepted, want 1", id, accepted[id])
		}
	}
	rows, err := s.HuntRows(ctx, "hunt-c", 1000, 0)
	if err != nil || len(rows) != 2*n {
		t.Fatalf("HuntRows = %d rows, %v; want %d", len(rows), err, 2*n)
	}
	// Each host's two rows come in order, from the same answer.
	last := map[string]string{}
	for _, r := range rows {
		var v struct {
			Host string `json:"host"`
			N    int    `json:"n"`
			Try  int    `json:"try"`
		}
		if err := json.Unmarshal(r.Columns, &v); err != nil || v.Host != r.HostID {
			t.Fatalf("row %s of host %s: %v", r.Columns, r.HostID, err)
		}
		key := fmt.Sprint(v.Try)
		switch v.N {
		case 1:
			if _, ok := last[v.Host]; ok {
				t.Errorf("host %s: rows of two answers stored", v.Host)
			}
			last[v.Host] = key
		case 2:
			if last[v.Host] != key {
				t.Errorf("host %s: row 2 of answer %s without or before its row 1 (%q)", v.Host, key, last[v.Host])
			}
		}
	}
	if counts, total, err := s.HuntCounts(ctx, "hunt-c"); err != nil || counts[store.HuntAnswered] != n || total != 2*n {
		t.Fatalf("HuntCounts = %v, %d, %v", counts, total, err)
	}
}
