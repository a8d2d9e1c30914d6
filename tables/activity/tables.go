package activity

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"

	"github.com/quarry-sec/quarry/tables"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

// built specs, once.
var builtSpecs = func() []*built {
	out := make([]*built, len(specs))
	for i, s := range specs {
		out[i] = s.build()
	}
	return out
}()

// eventsSpec is the generic table of every stored event.
var eventsSpec = (&spec{
	name: "events", kind: "event",
	description: "Every stored event, of every kind and source, with its own fields as JSON (read one with " +
		"json_extract(fields, '$.Name')). Constraints on category, event_id and channel are answered from the store's index.",
	columns: []column{
		{Column: tables.Column{Name: "category", Type: tables.Text, Description: "Sigma log source category (process_creation, network_connection, registry_set…)", Additional: true},
			value: func(a *eventstore.Activity) any { return a.Category }, base: true},
		{Column: tables.Column{Name: "kind", Type: tables.Text, Description: "execve, exit or other"},
			value: func(a *eventstore.Activity) any { return a.Kind.String() }, base: true},
		{Column: tables.Column{Name: "table_name", Type: tables.Text, Description: "The named table that shows the event; events when none does"},
			value: func(a *eventstore.Activity) any { return tableOfActivity(a) }, base: true},
		text("fields", "The event's own fields, a JSON object of strings", func(a *eventstore.Activity) any {
			b, err := json.Marshal(a.Fields)
			if err != nil {
				return nil
			}
			return string(b)
		}),
	},
}).build()

// Tables returns every activity table over st: the named tables, events and
// process_activity.
func Tables(st *eventstore.Store) []tables.Table {
	out := make([]tables.Table, 0, len(builtSpecs)+2)
	for _, b := range builtSpecs {
		out = append(out, b.table(st))
	}
	out = append(out, eventsSpec.table(st), processActivity(st))
	return out
}

// OsqueryNames maps the activity tables osquery has a table of the same
// name as to their names inside osquery.
func OsqueryNames() map[string]string {
	m := map[string]string{}
	for _, s := range specs {
		if s.osqueryName != "" {
			m[s.name] = s.osqueryName
		}
	}
	return m
}

// TableOf returns the named table an event lands in: process_events for a
// process start or exit, an activity table's name, or "" when only the
// events table shows it.
func TableOf(e *telemetry.Event) string {
	if e.Kind == telemetry.KindExec || e.Kind == telemetry.KindExit {
		return "process_events"
	}
	for _, b := range builtSpecs {
		for _, s := range b.selectors {
			if s.Match(e) {
				return b.name
			}
		}
	}
	return ""
}

// tableOfActivity is TableOf for a stored event, "events" for none.
func tableOfActivity(a *eventstore.Activity) string {
	if b := specOf(a); b != nil {
		return b.name
	}
	if a.Kind == telemetry.KindExec || a.Kind == telemetry.KindExit {
		return "process_events"
	}
	return "events"
}

// specOf returns the activity table a stored event belongs to, or nil.
func specOf(a *eventstore.Activity) *built {
	if a.Kind == telemetry.KindExec || a.Kind == telemetry.KindExit {
		return nil
	}
	for _, b := range builtSpecs {
		for _, s := range b.selectors {
			if s.Matches(string(a.Source), a.Channel, a.EventID, a.Category) {
				return b
			}
		}
	}
	return nil
}

// Counts counts events by the named table they land in ("" for the events
// table only), for an import's summary.
type Counts map[string]int

// Add counts one event.
func (c Counts) Add(e *telemetry.Event) { c[TableOf(e)]++ }

// Print writes one line per table, the most events first, and the events
// no named table shows.
func (c Counts) Print(w io.Writer) {
	total := 0
	names := make([]string, 0, len(c))
	for n, k := range c {
		total += k
		if n != "" {
			names = append(names, n)
		}
	}
	if total == 0 {
		return
	}
	sort.Slice(names, func(i, j int) bool {
		if c[names[i]] != c[names[j]] {
			return c[names[i]] > c[names[j]]
		}
		return names[i] < names[j]
	})
	named := total - c[""]
	fmt.Fprintf(w, "tables: %d of %d events (%.1f%%) in named tables, %d only in events\n",
		named, total, 100*float64(named)/float64(total), c[""])
	for _, n := range names {
		fmt.Fprintf(w, "  %-24s %d\n", n, c[n])
	}
}
