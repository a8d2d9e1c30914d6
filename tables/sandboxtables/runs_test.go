package sandboxtables_test

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/extension/sqlengine"
	"github.com/quarry-sec/quarry/tables"
	"github.com/quarry-sec/quarry/tables/activity"
	"github.com/quarry-sec/quarry/tables/process"
	"github.com/quarry-sec/quarry/tables/sandboxtables"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

var t0 = time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)

// sandbox_runs lists the stored runs with their constraints applied, and
// joins the run's events through process_events.run_id.
func TestSandboxRuns(t *testing.T) {
	ctx := context.Background()
	st, err := eventstore.Open(filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i, id := range []string{"run-a", "run-b"} {
		run := telemetry.SandboxRun{ID: id, Origin: "detonate", Host: "lab", Sample: "s" + id, SHA256: fmt.Sprintf("%064d", i),
			Started: t0.Add(time.Duration(i) * time.Hour), Duration: 1500 * time.Millisecond, Verdict: "malicious", Score: 7.5,
			Techniques: []string{"T1033", "T1105"}, Tactics: []string{"TA0007", "TA0011"}}
		if err := st.PutSandboxRun(ctx, run); err != nil {
			t.Fatal(err)
		}
		ev := telemetry.NewEvent(telemetry.KindExec, telemetry.SourceSandbox)
		ev.Host, ev.Time, ev.StartTime, ev.PID, ev.PPID, ev.Path, ev.Cmdline = "lab", run.Started, run.Started, 10, 1, "/usr/bin/id", "id "+id
		ev.RunID = id
		conn := telemetry.NewEvent(telemetry.KindOther, telemetry.SourceSandbox)
		conn.Host, conn.Time, conn.PID, conn.Path, conn.Category, conn.RunID = "lab", run.Started.Add(time.Second), 10, "/usr/bin/id", "network_connection", id
		conn.Fields = telemetry.FieldsFromMap(map[string]string{"Initiated": "true", "Action": "connect", "DestinationIp": "198.18.0.1", "DestinationPort": fmt.Sprint(80 + i)})
		if _, err := st.Append(ctx, []telemetry.Event{ev, conn}); err != nil {
			t.Fatal(err)
		}
	}
	reg := tables.NewRegistry()
	if err := reg.Register(append(activity.Tables(st), sandboxtables.Runs(st), process.Events(st, process.Options{}))...); err != nil {
		t.Fatal(err)
	}
	e, err := sqlengine.Open(reg)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for _, c := range []struct {
		q    string
		want [][]string
	}{
		{"SELECT run_id, duration_ms, score, techniques, tactics FROM sandbox_runs ORDER BY run_id",
			[][]string{{"run-a", "1500", "7.5", "T1033,T1105", "TA0007,TA0011"}, {"run-b", "1500", "7.5", "T1033,T1105", "TA0007,TA0011"}}},
		{"SELECT run_id FROM sandbox_runs WHERE run_id = 'run-b'", [][]string{{"run-b"}}},
		{fmt.Sprintf("SELECT run_id FROM sandbox_runs WHERE started < %d", t0.Add(time.Minute).Unix()), [][]string{{"run-a"}}},
		{fmt.Sprintf("SELECT run_id FROM sandbox_runs WHERE sha256 = '%064d'", 1), [][]string{{"run-b"}}},
		{"SELECT run_id FROM sandbox_runs WHERE origin = 'cape'", nil},
		{"SELECT r.sample, p.cmdline, p.source FROM sandbox_runs r JOIN process_events p ON p.run_id = r.run_id ORDER BY r.run_id",
			[][]string{{"srun-a", "id run-a", "sandbox"}, {"srun-b", "id run-b", "sandbox"}}},
		{"SELECT remote_port FROM socket_events WHERE run_id = 'run-b'", [][]string{{"81"}}},
	} {
		if got := query(t, e, c.q); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s:\n got %v\nwant %v", c.q, got, c.want)
		}
	}
}

func query(t *testing.T, e *sqlengine.Engine, q string) [][]string {
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
			row[i] = fmt.Sprint(v)
		}
		out = append(out, row)
	}
	return out
}
