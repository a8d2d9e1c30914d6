package incidents_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/detections"
	inc "github.com/quarry-sec/quarry/detections/incidents"
	"github.com/quarry-sec/quarry/detections/pipeline"
	"github.com/quarry-sec/quarry/detections/ruleset"
	sqlengine "github.com/quarry-sec/quarry/extension/sqlite"
	"github.com/quarry-sec/quarry/tables"
	"github.com/quarry-sec/quarry/tables/incidents"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/store"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func execAt(at time.Duration, pid, ppid int64, path, cmdline string) telemetry.Event {
	ev := telemetry.NewEvent(telemetry.KindExec, telemetry.SourceEBPF)
	ev.Host, ev.Category = "lab", "process_creation"
	ev.Time = t0.Add(at)
	ev.StartTime = ev.Time
	ev.PID, ev.PPID, ev.Path, ev.Cmdline = pid, ppid, path, cmdline
	ev.Username = "alice"
	return ev
}

// setup stores a decode → shell → crontab chain under a script, an exited
// child, and an unrelated process, with detection and incidents, and
// returns an engine serving the incident tables.
func setup(t *testing.T) *sqlengine.Engine {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kb, err := attack.Load("")
	if err != nil {
		t.Fatal(err)
	}
	res, err := ruleset.Load(ruleset.Config{Builtin: true, KB: kb})
	if err != nil {
		t.Fatal(err)
	}
	exit := telemetry.NewEvent(telemetry.KindExit, telemetry.SourceEBPF)
	exit.Host, exit.Time, exit.PID = "lab", t0.Add(3*time.Second), 201
	evs := []telemetry.Event{
		execAt(0, 100, 1, "/usr/bin/bash", "bash /tmp/stage.sh"),
		execAt(time.Second, 200, 100, "/usr/bin/sh", "sh -c echo aWQ= | base64 -d | sh"),
		execAt(2*time.Second, 201, 200, "/usr/bin/id", "id"),
		exit,
		execAt(4*time.Second, 202, 100, "/usr/bin/crontab", "/usr/bin/crontab /tmp/.job"),
		execAt(5*time.Second, 300, 1, "/usr/sbin/nginx", "nginx -g daemon off;"),
	}
	ctx := context.Background()
	recs, err := pipeline.Detect(ctx, st, detections.NewEngine(res.Rules), kb, evs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := inc.RefreshHits(ctx, st, recs, inc.Options{}); err != nil {
		t.Fatal(err)
	}
	reg := tables.NewRegistry()
	if err := reg.Register(incidents.Incidents(st, kb), incidents.IncidentHits(st), incidents.ProcessTree(st),
		incidents.RelatedIncidents(st)); err != nil {
		t.Fatal(err)
	}
	e, err := sqlengine.Open(reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func rows(t *testing.T, e *sqlengine.Engine, q string) [][]string {
	t.Helper()
	rs, err := e.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rs.Close()
	cols, _ := rs.Columns()
	var out [][]string
	for rs.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := make([]string, len(cols))
		for i, v := range vals {
			row[i] = tables.ValueString(v)
		}
		out = append(out, row)
	}
	if err := rs.Err(); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return out
}

func TestIncidentTables(t *testing.T) {
	e := setup(t)
	got := rows(t, e, "SELECT incident_id, host_identifier, hit_count, root_pid, root_path, severity, tactics, techniques FROM incidents")
	if len(got) != 1 {
		t.Fatalf("want one incident, got %v", got)
	}
	in := got[0]
	if in[1] != "lab" || in[2] != "2" || in[3] != "100" || in[4] != "/usr/bin/bash" || in[5] != "high" {
		t.Errorf("incident: %v", in)
	}
	for _, want := range []string{"T1140", "T1053.003"} {
		if !strings.Contains(in[7], want) {
			t.Errorf("techniques %s lack %s", in[7], want)
		}
	}
	if !strings.HasPrefix(in[6], "execution,persistence") {
		t.Errorf("tactics not in matrix order: %s", in[6])
	}
	// Its hits join ioa_hits' ids; constraints reach the table.
	if n := rows(t, e, "SELECT count(*) FROM incident_hits WHERE incident_id = '"+in[0]+"'"); n[0][0] != "2" {
		t.Errorf("incident_hits: %v", n)
	}
	if n := rows(t, e, "SELECT count(*) FROM incidents WHERE host_identifier = 'other'"); n[0][0] != "0" {
		t.Errorf("host filter: %v", n)
	}
	if n := rows(t, e, "SELECT count(*) FROM incidents WHERE last_seen >= "+itoa(t0.Add(time.Hour).Unix())); n[0][0] != "0" {
		t.Errorf("time filter: %v", n)
	}

	// The tree of the decoding shell: the script and pid 1 (known only as
	// the script's parent) above it, id (exited) below, with depths and hits.
	tree := rows(t, e, "SELECT depth, relation, node_pid, path, exited, hit_count, techniques FROM process_tree WHERE pid = 200 AND host_identifier = 'lab'")
	want := [][]string{
		{"0", "ancestor", "1", "", "0", "0", ""},
		{"1", "ancestor", "100", "/usr/bin/bash", "0", "0", ""},
		{"2", "self", "200", "/usr/bin/sh", "0", "1", "T1027,T1059.004,T1140"},
		{"3", "descendant", "201", "/usr/bin/id", "1", "0", ""},
	}
	if !equal(tree, want) {
		t.Errorf("process_tree pid 200:\n got %v\nwant %v", tree, want)
	}
	// The incident's tree is its root's: the script with its three children.
	tree = rows(t, e, "SELECT depth, relation, node_pid, hit_count FROM process_tree WHERE incident_id = '"+in[0]+"'")
	want = [][]string{{"0", "ancestor", "1", "0"}, {"1", "self", "100", "0"}, {"2", "descendant", "200", "1"},
		{"3", "descendant", "201", "0"}, {"2", "descendant", "202", "1"}}
	if !equal(tree, want) {
		t.Errorf("process_tree of the incident:\n got %v\nwant %v", tree, want)
	}
	// One incident: nothing related; the table needs an incident.
	if n := rows(t, e, "SELECT count(*) FROM related_incidents WHERE incident_id = '"+in[0]+"'"); n[0][0] != "0" {
		t.Errorf("related_incidents: %v", n)
	}
	if _, err := e.Query(context.Background(), "SELECT * FROM related_incidents"); err == nil {
		t.Error("related_incidents without incident_id: want an error")
	}
	if _, err := e.Query(context.Background(), "SELECT * FROM process_tree"); err == nil || !strings.Contains(err.Error(), "pid") {
		t.Errorf("process_tree without a pid or incident: want an error naming pid, got %v", err)
	}
}

func equal(a, b [][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if strings.Join(a[i], "|") != strings.Join(b[i], "|") {
			return false
		}
	}
	return true
}

func itoa(n int64) string { return tables.ValueString(n) }
