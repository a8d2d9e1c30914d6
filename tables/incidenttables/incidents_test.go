package incidenttables_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/detections/incidents"
	"github.com/quarry-sec/quarry/detections/pipeline"
	"github.com/quarry-sec/quarry/detections/ruleset"
	"github.com/quarry-sec/quarry/extension/sqlengine"
	"github.com/quarry-sec/quarry/tables"
	"github.com/quarry-sec/quarry/tables/activity"
	"github.com/quarry-sec/quarry/tables/incidenttables"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
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
	st, err := eventstore.Open(filepath.Join(t.TempDir(), "events.db"))
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
	// The decoding shell's own activity: a reverse-shell connection (a
	// rule's hit), five file writes (beyond the three listed) and a
	// registry value set.
	other := func(at time.Duration, src telemetry.Source, cat string, kv ...string) telemetry.Event {
		ev := telemetry.NewEvent(telemetry.KindOther, src)
		ev.Host, ev.Category, ev.Time, ev.PID, ev.Path = "lab", cat, t0.Add(at), 200, "/usr/bin/sh"
		for j := 0; j+1 < len(kv); j += 2 {
			ev.Fields.Set(kv[j], kv[j+1])
		}
		return ev
	}
	evs = append(evs, other(1500*time.Millisecond, telemetry.SourceEBPF, "network_connection", "Image", "/usr/bin/sh",
		"Protocol", "tcp", "Initiated", "true", "SourceIp", "10.0.0.5", "SourcePort", "50000",
		"DestinationIp", "203.0.113.7", "DestinationPort", "443", "Action", "connect"))
	for i := 0; i < 5; i++ {
		evs = append(evs, other(1600*time.Millisecond+time.Duration(i)*time.Millisecond, telemetry.SourceEBPF, "file_event",
			"TargetFilename", "/tmp/out"+itoa(int64(i)), "Action", "write"))
	}
	reg := other(1700*time.Millisecond, telemetry.SourceSysmon, "registry_set", "EventType", "SetValue",
		"TargetObject", `HKU\S-1-5-21\Software\Quarry\Test`, "Details", "1")
	reg.Channel, reg.EventID = "Microsoft-Windows-Sysmon/Operational", 13
	evs = append(evs, reg)
	ctx := context.Background()
	recs, err := pipeline.Detect(ctx, st, detections.NewEngine(res.Rules), kb, evs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := incidents.RefreshHits(ctx, st, recs, incidents.Options{}); err != nil {
		t.Fatal(err)
	}
	tabs := tables.NewRegistry()
	if err := tabs.Register(incidenttables.Incidents(st, kb), incidenttables.IncidentHits(st), incidenttables.ProcessTree(st),
		incidenttables.RelatedIncidents(st)); err != nil {
		t.Fatal(err)
	}
	e, err := sqlengine.Open(tabs)
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
	if in[1] != "lab" || in[2] != "3" || in[3] != "100" || in[4] != "/usr/bin/bash" || in[5] != "critical" {
		t.Errorf("incident: %v", in)
	}
	// The reverse-shell connection's hit (a network event) joins the
	// shell's incident.
	for _, want := range []string{"T1140", "T1053.003", "T1095"} {
		if !strings.Contains(in[7], want) {
			t.Errorf("techniques %s lack %s", in[7], want)
		}
	}
	if !strings.HasPrefix(in[6], "execution,persistence") {
		t.Errorf("tactics not in matrix order: %s", in[6])
	}
	// Its hits join ioa_hits' ids; constraints reach the table.
	if n := rows(t, e, "SELECT count(*) FROM incident_hits WHERE incident_id = '"+in[0]+"'"); n[0][0] != "3" {
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
		{"2", "self", "200", "/usr/bin/sh", "0", "2", "T1027.010,T1059.004,T1095,T1140"},
		{"3", "descendant", "201", "/usr/bin/id", "1", "0", ""},
	}
	if !equal(tree, want) {
		t.Errorf("process_tree pid 200:\n got %v\nwant %v", tree, want)
	}
	// The incident's tree is its root's: the script with its three children.
	tree = rows(t, e, "SELECT depth, relation, node_pid, hit_count FROM process_tree WHERE incident_id = '"+in[0]+"'")
	want = [][]string{{"0", "ancestor", "1", "0"}, {"1", "self", "100", "0"}, {"2", "descendant", "200", "2"},
		{"3", "descendant", "201", "0"}, {"2", "descendant", "202", "1"}}
	if !equal(tree, want) {
		t.Errorf("process_tree of the incident:\n got %v\nwant %v", tree, want)
	}
	// The shell's activity: the connection badged with its hit's
	// techniques, the file writes collapsed to three of five, the registry
	// value; the other processes did nothing else.
	acts := rows(t, e, "SELECT node_pid, activity FROM process_tree WHERE incident_id = '"+in[0]+"'")
	for _, r := range acts {
		if r[0] != "200" {
			if r[1] != "" {
				t.Errorf("pid %s: activity %s, want none", r[0], r[1])
			}
			continue
		}
		act, err := activity.ParseProcessActivity(r[1])
		if err != nil {
			t.Fatalf("activity of the shell: %v", err)
		}
		net, file, regs := act["network"], act["file"], act["registry"]
		if net == nil || file == nil || regs == nil || len(act) != 3 {
			t.Fatalf("activity kinds of the shell: %s", r[1])
		}
		if net.Count != 1 || len(net.Items) != 1 || !strings.Contains(net.Items[0].Summary, "203.0.113.7") ||
			strings.Join(net.Items[0].Techniques, ",") != "T1059.004,T1095" || net.Items[0].Severity != "critical" {
			t.Errorf("network activity: %+v", net)
		}
		if file.Count != 5 || len(file.Items) != activity.PerKind || !strings.Contains(file.Items[0].Summary, "/tmp/out0") ||
			len(file.Items[0].Techniques) != 0 || file.Items[0].Severity != "" {
			t.Errorf("file activity: %+v", file)
		}
		if regs.Count != 1 || !strings.Contains(regs.Items[0].Summary, "Quarry") {
			t.Errorf("registry activity: %+v", regs)
		}
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
