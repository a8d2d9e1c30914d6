package activity

import (
	"context"
	"strconv"

	"github.com/quarry-sec/quarry/tables"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

// processActivityColumns are process_activity's columns.
var processActivityColumns = []tables.Column{
	{Name: "process_key", Type: tables.Text, Description: "The process (process_events.process_key); constrain it: WHERE process_key = '…'", Additional: true},
	{Name: "time", Type: tables.BigInt, Description: "Time of the event in UNIX time (seconds)", Additional: true},
	{Name: "kind", Type: tables.Text, Description: "process, network, file, registry, dns, image_load, process_access, logon, script… (event: only in the events table)"},
	{Name: "table_name", Type: tables.Text, Description: "The table that shows the event in full"},
	{Name: "summary", Type: tables.Text, Description: "One line of what happened"},
	{Name: "eid", Type: tables.BigInt, Description: "Event ID: the event's row in Quarry's store (join the table named by table_name on it)", Additional: true},
	{Name: "techniques", Type: tables.Text, Description: "ATT&CK technique IDs informational detections tagged the event with"},
	{Name: "host_identifier", Type: tables.Text, Description: "Host the event happened on", Additional: true},
	{Name: "pid", Type: tables.BigInt, Description: "Process ID of the acting process; -1 unknown"},
	{Name: "path", Type: tables.Text, Description: "Image of the acting process"},
	{Name: "source", Type: tables.Text, Description: "Where the event came from", Additional: true},
	{Name: "event_id", Type: tables.Integer, Description: "Windows event ID; 0 for Linux sources"},
}

// processActivity is the table of one process's events of every kind, in
// time order.
func processActivity(st *eventstore.Store) tables.Table {
	return tables.Table{
		Name: "process_activity",
		Description: "Everything one process did, in time order: WHERE process_key = '…' lists its start and exit, connections, " +
			"files, registry changes, DNS queries, image loads, accesses… one row each, with the table that shows it in full " +
			"and a one-line summary.",
		Columns: processActivityColumns,
		Generate: func(ctx context.Context, q tables.QueryContext, emit tables.EmitFunc) error {
			f, ok := filterFor(q, nil)
			if !ok {
				return nil
			}
			f.TimeOrder = true
			f.NoFields = !q.Uses("summary") && !q.Uses("pid") && !q.Uses("path")
			row := make(tables.Row, len(processActivityColumns))
			var stop error
			err := st.ScanActivity(ctx, f, func(a *eventstore.Activity) bool {
				if err := ctx.Err(); err != nil {
					stop = err
					return false
				}
				kind, table, summary := describe(a, q.Uses("summary"))
				row[0] = a.ProcessKey
				row[1] = a.Time.Unix()
				row[2] = kind
				row[3] = table
				row[4] = summary
				row[5] = a.EID
				row[6] = a.Techniques
				row[7] = a.Host
				row[8] = actorPID(a)
				row[9] = nullable(actorPath(a))
				row[10] = string(a.Source)
				row[11] = int64(a.EventID)
				return emit(row)
			})
			if err != nil {
				return err
			}
			return stop
		},
	}
}

// describe returns an event's kind, table and (when wanted) summary.
func describe(a *eventstore.Activity, wantSummary bool) (kind, table string, summary any) {
	switch a.Kind {
	case telemetry.KindExec:
		return "process", "process_events", nullable("execve " + a.Cmdline)
	case telemetry.KindExit:
		s := "exit"
		if c, ok := parseNumber(first(a, "ExitCode", "Status")); ok {
			s += " " + strconv.FormatInt(c, 10)
		}
		return "process", "process_events", s
	}
	b := specOf(a)
	if b == nil {
		s := a.Category
		if s == "" {
			s = a.Channel + " " + strconv.Itoa(a.EventID)
		}
		return "event", "events", s
	}
	if !wantSummary {
		return b.kind, b.name, nil
	}
	return b.kind, b.name, nullable(b.summary(b.get(a)))
}
