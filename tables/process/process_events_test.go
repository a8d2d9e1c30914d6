package process_test

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/extension/sqlengine"
	"github.com/quarry-sec/quarry/tables"
	"github.com/quarry-sec/quarry/tables/process"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

var t0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

func newEngine(t *testing.T) *sqlengine.Engine {
	t.Helper()
	st, err := eventstore.Open(filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var evs []telemetry.Event
	for i := 0; i < 60; i++ {
		e := telemetry.NewEvent(telemetry.KindExec, telemetry.SourceEBPF)
		if i%4 == 3 {
			e.Kind = telemetry.KindExit
			e.ExitCode = 2
		}
		e.Time = t0.Add(time.Duration(i) * time.Minute)
		e.Host = []string{"web1", "db1"}[i%2]
		e.PID = int64(100 + i)
		e.PPID = 1
		e.Path = []string{"/usr/bin/curl", "/bin/bash", "/usr/sbin/nginx"}[i%3]
		e.Cmdline = e.Path + " -x"
		e.ParentPath = "/usr/sbin/sshd"
		e.UID = 0
		e.Truncated = i == 7
		evs = append(evs, e)
	}
	other := telemetry.NewEvent(telemetry.KindOther, telemetry.SourceSysmon)
	other.Time = t0
	other.Category = "file_event"
	evs = append(evs, other)
	if _, err := st.Append(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	reg := tables.NewRegistry()
	if err := reg.Register(process.Events(st, process.Options{LocalHost: "web1", BootTime: t0.Add(-time.Hour)})); err != nil {
		t.Fatal(err)
	}
	e, err := sqlengine.Open(reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func count(t *testing.T, e *sqlengine.Engine, where string) int64 {
	t.Helper()
	rows, err := e.Query(context.Background(), "SELECT count(*) FROM process_events "+where)
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	defer rows.Close()
	var n int64
	rows.Next()
	if err := rows.Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestProcessEventsQueries(t *testing.T) {
	e := newEngine(t)
	start := t0.Unix()
	cases := []struct {
		where string
		want  int64
	}{
		{"", 60}, // the file_event is not a process event
		{"WHERE time >= " + itoa(start+600) + " AND time < " + itoa(start+1200), 10},
		{"WHERE time BETWEEN " + itoa(start) + " AND " + itoa(start+59), 1},
		{"WHERE pid IN (100, 101, 999)", 2},
		{"WHERE pid = '105'", 1},
		{"WHERE path = '/bin/bash'", 20},
		{"WHERE path LIKE '%CURL'", 20},
		{"WHERE syscall = 'exit'", 15},
		{"WHERE syscall = 'exit' AND exit_code = 2", 15},
		{"WHERE host_identifier = 'db1' AND path = '/usr/bin/curl'", 10},
		{"WHERE source = 'sysmon'", 0},
		{"WHERE eid > 50", 10},
		{"WHERE parent_path = '/usr/sbin/sshd' AND uptime = 3600", 1},
		{"WHERE pid = NULL", 0},
	}
	for _, c := range cases {
		if got := count(t, e, c.where); got != c.want {
			t.Errorf("%q: %d rows, want %d", c.where, got, c.want)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestProcessEventsTruncated(t *testing.T) {
	e := newEngine(t)
	if n := count(t, e, "WHERE truncated = 1"); n != 1 {
		t.Errorf("truncated = 1: %d rows, want 1", n)
	}
	if n := count(t, e, "WHERE truncated = 1 AND pid = 107"); n != 1 {
		t.Errorf("the truncated row is not pid 107")
	}
}
