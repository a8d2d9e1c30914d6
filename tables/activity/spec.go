// Package activity holds the endpoint activity tables: one table per kind of
// event the store keeps besides process starts and exits (socket_events,
// file_events, registry_events, dns_lookup_events, image_load_events…), the
// generic events table of every stored event, and process_activity, one
// process's events of every kind in time order.
//
// Each table is a small declarative spec: which stored events it reads
// (eventstore.Selectors: source, channel, event ID, Sigma category) and how each
// of its columns is taken from an event's own fields. Every table has the
// common columns time, host_identifier, source, eid, pid, process_key, path
// (the acting process's image), username, event_id, channel and techniques;
// constraints on time, eid, pid, host_identifier, source and process_key are
// answered by the store's indexes, and only the rows returned have their
// fields decoded.
package activity

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/quarry-sec/quarry/tables"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

// column is one column of a spec: its schema and how its value is taken
// from an event.
type column struct {
	tables.Column
	value func(a *eventstore.Activity) any
	// base marks a column read from the event's stored columns only, not
	// its fields: a query reading only base columns does not decode fields.
	base bool
}

// spec declares one activity table.
type spec struct {
	name string
	// osqueryName is the table's name inside osquery when osquery has a
	// table of the same name (quarry_socket_events); "" otherwise.
	osqueryName string
	// kind is the table's word in process_activity.kind.
	kind        string
	description string
	selectors   []eventstore.Selector
	// columns are the table's own columns; the common ones follow.
	columns []column
	// summary renders one event as a line of text for process_activity;
	// get returns a column's value as text ("" for NULL).
	summary func(get func(string) string) string
	// generate, when set, replaces the one-row-per-event read (the script
	// blocks of script_events are assembled from several events).
	generate func(ctx context.Context, st *eventstore.Store, t *built, f eventstore.ActivityFilter, q tables.QueryContext, emit tables.EmitFunc) error
}

// built is a spec with its full column list.
type built struct {
	*spec
	cols []column
}

func (s *spec) build() *built {
	b := &built{spec: s}
	b.cols = append(b.cols, s.columns...)
	b.cols = append(b.cols, commonColumns...)
	return b
}

// commonColumns end every activity table.
var commonColumns = []column{
	{Column: tables.Column{Name: "time", Type: tables.BigInt, Description: "Time of the event in UNIX time (seconds)", Additional: true},
		value: func(a *eventstore.Activity) any { return a.Time.Unix() }, base: true},
	{Column: tables.Column{Name: "host_identifier", Type: tables.Text, Description: "Host the event happened on", Additional: true},
		value: func(a *eventstore.Activity) any { return a.Host }, base: true},
	{Column: tables.Column{Name: "source", Type: tables.Text, Description: "Where the event came from: sysmon, sysmon_linux, windows (other Windows channels), ebpf…", Additional: true},
		value: func(a *eventstore.Activity) any { return string(a.Source) }, base: true},
	{Column: tables.Column{Name: "eid", Type: tables.BigInt, Description: "Event ID: the event's row in Quarry's store", Additional: true},
		value: func(a *eventstore.Activity) any { return a.EID }, base: true},
	{Column: tables.Column{Name: "pid", Type: tables.BigInt, Description: "Process ID of the acting process; -1 unknown", Additional: true},
		value: func(a *eventstore.Activity) any { return actorPID(a) }},
	{Column: tables.Column{Name: "process_key", Type: tables.Text, Description: "Identity of the acting process (process_events.process_key); empty when unknown", Additional: true},
		value: func(a *eventstore.Activity) any { return a.ProcessKey }, base: true},
	{Column: tables.Column{Name: "path", Type: tables.Text, Description: "Image (executable path) of the acting process"},
		value: func(a *eventstore.Activity) any { return nullable(actorPath(a)) }},
	{Column: tables.Column{Name: "username", Type: tables.Text, Description: "User of the acting process (DOMAIN\\user), when the event names it"},
		value: func(a *eventstore.Activity) any { return nullable(actorUser(a)) }},
	{Column: tables.Column{Name: "event_id", Type: tables.Integer, Description: "Windows event ID (Sysmon 3, Security 5156…); 0 for Linux sources", Additional: true},
		value: func(a *eventstore.Activity) any { return int64(a.EventID) }, base: true},
	{Column: tables.Column{Name: "channel", Type: tables.Text, Description: "Windows event log channel; empty for Linux sources", Additional: true},
		value: func(a *eventstore.Activity) any { return a.Channel }, base: true},
	{Column: tables.Column{Name: "techniques", Type: tables.Text, Description: "ATT&CK technique IDs informational detections tagged the event with"},
		value: func(a *eventstore.Activity) any { return a.Techniques }, base: true},
	{Column: tables.Column{Name: "run_id", Type: tables.Text, Description: "The sandbox run the event was recorded in (sandbox_runs.run_id); empty outside runs", Additional: true, Hidden: true},
		value: func(a *eventstore.Activity) any { return a.RunID }, base: true},
}

// table returns the spec as a table over st.
func (b *built) table(st *eventstore.Store) tables.Table {
	cols := make([]tables.Column, len(b.cols))
	for i, c := range b.cols {
		cols[i] = c.Column
	}
	return tables.Table{
		Name:        b.name,
		Description: b.description,
		Columns:     cols,
		Generate: func(ctx context.Context, q tables.QueryContext, emit tables.EmitFunc) error {
			f, ok := filterFor(q, b.selectors)
			if !ok {
				return nil
			}
			if b.generate != nil {
				return b.generate(ctx, st, b, f, q, emit)
			}
			f.NoFields = !b.needsFields(q)
			row := make(tables.Row, len(b.cols))
			var stop error
			err := st.ScanActivity(ctx, f, func(a *eventstore.Activity) bool {
				if err := ctx.Err(); err != nil {
					stop = err
					return false
				}
				b.fill(row, a, q)
				return emit(row)
			})
			if err != nil {
				return err
			}
			return stop
		},
	}
}

// needsFields reports whether a column the query reads comes from the
// events' own fields.
func (b *built) needsFields(q tables.QueryContext) bool {
	for _, c := range b.cols {
		if !c.base && q.Uses(c.Name) {
			return true
		}
	}
	return false
}

// fill sets row to a's values, leaving columns the query does not read NULL.
func (b *built) fill(row tables.Row, a *eventstore.Activity, q tables.QueryContext) {
	for i, c := range b.cols {
		if q.Uses(c.Name) {
			row[i] = c.value(a)
		} else {
			row[i] = nil
		}
	}
}

// get returns a function giving a column's value for a as text, for
// summaries.
func (b *built) get(a *eventstore.Activity) func(string) string {
	return func(name string) string {
		for _, c := range b.cols {
			if c.Name == name {
				v := c.value(a)
				if v == nil {
					return ""
				}
				return tables.ValueString(v)
			}
		}
		return ""
	}
}

// filterFor turns the query's constraints into a store filter; ok is false
// when no event can satisfy them.
func filterFor(q tables.QueryContext, sel []eventstore.Selector) (eventstore.ActivityFilter, bool) {
	f := eventstore.ActivityFilter{}
	sel, ok := narrow(sel, q)
	if !ok {
		return f, false
	}
	f.Select = sel
	if lo, hi, ok := q.IntRange("time"); ok {
		if lo > hi {
			return f, false
		}
		if lo > minUnix {
			f.Since = time.Unix(lo, 0)
		}
		if hi < maxUnix {
			f.Until = time.Unix(hi+1, 0)
		}
	}
	if lo, hi, ok := q.IntRange("eid"); ok {
		if lo > hi || hi < 1 {
			return f, false
		}
		if lo > 0 {
			f.EIDMin = lo
		}
		if hi < 1<<62 {
			f.EIDMax = hi
		}
	}
	if vals, ok := q.Equals("pid"); ok {
		f.PIDs = ints(vals)
		if len(f.PIDs) == 0 {
			return f, false
		}
	}
	for _, c := range []struct {
		col string
		dst *[]string
	}{{"host_identifier", &f.Hosts}, {"source", &f.Sources}, {"process_key", &f.ProcessKeys}, {"run_id", &f.RunIDs}} {
		if vals, ok := q.EqualStrings(c.col); ok {
			if len(vals) == 0 {
				return f, false
			}
			*c.dst = vals
		}
	}
	return f, true
}

// narrow restricts the table's selectors by the query's event_id, channel
// and category equality constraints; ok is false when none is left.
func narrow(sel []eventstore.Selector, q tables.QueryContext) ([]eventstore.Selector, bool) {
	var ids []int
	idVals, hasIDs := q.Equals("event_id")
	for _, n := range ints(idVals) {
		ids = append(ids, int(n))
	}
	chans, hasChans := q.EqualStrings("channel")
	cats, hasCats := q.EqualStrings("category")
	if !hasIDs && !hasChans && !hasCats {
		return sel, true
	}
	if len(sel) == 0 {
		sel = []eventstore.Selector{{}}
	}
	out := make([]eventstore.Selector, 0, len(sel))
	for _, s := range sel {
		var ok1, ok2, ok3 bool
		s.EventIDs, ok1 = intersect(s.EventIDs, ids, hasIDs)
		s.Channels, ok2 = intersect(s.Channels, chans, hasChans)
		s.Categories, ok3 = intersect(s.Categories, cats, hasCats)
		if ok1 && ok2 && ok3 {
			out = append(out, s)
		}
	}
	return out, len(out) > 0
}

// intersect returns the values of a selector list (nil: any value) that a
// constraint allows; ok is false when none is left.
func intersect[T comparable](have, allowed []T, constrained bool) ([]T, bool) {
	if !constrained {
		return have, true
	}
	if have == nil {
		return allowed, len(allowed) > 0
	}
	var out []T
	for _, h := range have {
		for _, a := range allowed {
			if h == a {
				out = append(out, h)
				break
			}
		}
	}
	return out, len(out) > 0
}

const (
	minUnix = -62135596800 // 0001-01-01
	maxUnix = 253402300799 // 9999-12-31
)

// ints keeps the values that are whole numbers (as SQLite would compare
// them with an integer column).
func ints(vals []any) []int64 {
	var out []int64
	for _, v := range vals {
		switch x := v.(type) {
		case int64:
			out = append(out, x)
		case float64:
			if x == float64(int64(x)) {
				out = append(out, int64(x))
			}
		case string:
			if n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// nullable is s, or NULL when s is empty.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// field returns a column value function giving one field (NULL when absent
// or empty).
func field(name string) func(a *eventstore.Activity) any {
	return func(a *eventstore.Activity) any { return nullable(a.Field(name)) }
}

// firstField returns the first of the named fields that is present.
func firstField(names ...string) func(a *eventstore.Activity) any {
	return func(a *eventstore.Activity) any { return nullable(first(a, names...)) }
}

// first is the value of the first of the named fields that is set.
func first(a *eventstore.Activity, names ...string) string {
	for _, n := range names {
		if v := a.Field(n); v != "" {
			return v
		}
	}
	return ""
}

// intField returns a field read as a decimal or 0x-hex number.
func intField(names ...string) func(a *eventstore.Activity) any {
	return func(a *eventstore.Activity) any {
		if n, ok := parseNumber(first(a, names...)); ok {
			return n
		}
		return nil
	}
}

// codesField returns a field with its Windows message codes (%%4417)
// rendered as words.
func codesField(names ...string) func(a *eventstore.Activity) any {
	return func(a *eventstore.Activity) any { return nullable(RenderCodes(first(a, names...))) }
}

// parseNumber reads a decimal or 0x-hex number.
func parseNumber(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	if len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		n, err := strconv.ParseUint(s[2:], 16, 64)
		return int64(n), err == nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// actorPID is the pid of the process that acted: the stored pid, else the
// one the event's fields name.
func actorPID(a *eventstore.Activity) int64 {
	if a.PID >= 0 {
		return a.PID
	}
	if n, ok := parseNumber(first(a, "SourceProcessId", "ProcessId", "ProcessID", "CallerProcessId", "ClientProcessId")); ok {
		return n
	}
	return telemetry.Unknown
}

// actorPath is the image of the process that acted.
func actorPath(a *eventstore.Activity) string {
	if a.Path != "" {
		return a.Path
	}
	if p := first(a, "SourceImage", "Image", "ProcessName", "CallerProcessName", "Application", "HostApplication"); p != "-" {
		return p
	}
	return ""
}

// actorUser is the user the event names as acting.
func actorUser(a *eventstore.Activity) string {
	if a.Username != "" {
		return a.Username
	}
	if u := a.Field("User"); u != "" {
		return u
	}
	return windowsUser(a.Field("SubjectDomainName"), a.Field("SubjectUserName"))
}

// windowsUser joins a domain and user as DOMAIN\user.
func windowsUser(domain, user string) string {
	switch {
	case user == "" || user == "-":
		return ""
	case domain == "" || domain == "-":
		return user
	}
	return domain + `\` + user
}

// joinSummary joins the non-empty values of the named columns with spaces.
func joinSummary(cols ...string) func(get func(string) string) string {
	return func(get func(string) string) string {
		parts := make([]string, 0, len(cols))
		for _, c := range cols {
			if v := get(c); v != "" {
				parts = append(parts, v)
			}
		}
		return strings.Join(parts, " ")
	}
}

// Sysmon and Windows channel selectors.
var (
	sysmonSources = []string{string(telemetry.SourceSysmon), string(telemetry.SourceSysmonLinux)}
	security      = []string{"Security"}
	system        = []string{"System"}
)

func sysmon(ids ...int) eventstore.Selector {
	return eventstore.Selector{Sources: sysmonSources, EventIDs: ids}
}

func securityEvents(ids ...int) eventstore.Selector {
	return eventstore.Selector{Channels: security, EventIDs: ids}
}

func systemEvents(ids ...int) eventstore.Selector {
	return eventstore.Selector{Channels: system, EventIDs: ids}
}

// linux selects events without an event ID (live Linux events, and
// imported sandbox reports' API behaviour) of the Sigma categories.
func linux(categories ...string) eventstore.Selector {
	return eventstore.Selector{EventIDs: []int{0}, Categories: categories}
}
