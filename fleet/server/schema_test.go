package server

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/extension/sqlengine"
	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/tables"
	"github.com/quarry-sec/quarry/tables/catalog"
)

// statusCounter counts the store's HostSchemaStatus calls.
type statusCounter struct {
	store.Store
	calls atomic.Int64
}

func (c *statusCounter) HostSchemaStatus(ctx context.Context, hostID string) (*store.HostSchema, error) {
	c.calls.Add(1)
	return c.Store.HostSchemaStatus(ctx, hostID)
}

// osquerySchemaRows are rows as osqueryd answers SchemaProbeSQL: every
// table of sqlite_temp_master, its CREATE statement with backtick-quoted
// columns.
var osquerySchemaRows = []map[string]string{
	{"name": "processes", "sql": "CREATE VIRTUAL TABLE temp.processes USING processes(`pid` BIGINT, `name` TEXT, `path` TEXT, `cmdline` TEXT, `pid_with_namespace` INTEGER HIDDEN)"},
	{"name": "users", "sql": "CREATE VIRTUAL TABLE temp.users USING users(`uid` BIGINT, `gid` BIGINT, `username` TEXT, `uuid` TEXT, PRIMARY KEY (`uid`, `uuid`)) WITHOUT ROWID"},
	{"name": "listening_ports", "sql": "CREATE VIRTUAL TABLE temp.listening_ports USING listening_ports(`pid` INTEGER, `port` INTEGER, `protocol` INTEGER, `address` TEXT)"},
	{"name": "odd", "sql": "something osquery never writes"},
}

func (f *fixture) read(key string) map[string]any {
	f.t.Helper()
	code, rd := f.osquery("distributed/read", map[string]any{"node_key": key})
	if code != 200 {
		f.t.Fatalf("distributed read: %d %v", code, rd)
	}
	return rd
}

func probed(rd map[string]any) bool {
	q, _ := rd["queries"].(map[string]any)[SchemaProbeID].(string)
	return q == SchemaProbeSQL
}

func fleetTable(t *testing.T, st store.Store, name string) *store.FleetTable {
	t.Helper()
	all, err := st.FleetTables(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i := range all {
		if all[i].Name == name {
			return &all[i]
		}
	}
	return nil
}

// An osquery host gets the schema probe with its first distributed read,
// alongside a hunt; its answer lists its tables in the store and is not a
// hunt answer; it is not probed again, by this server or another on the
// same store, until its osquery version changes.
func TestSchemaProbe(t *testing.T) {
	counter := &statusCounter{Store: openSQLite(t)}
	f := newFixture(t, counter)
	key := f.enroll("host-a", "ubuntu")
	code, h := f.api("POST", "/api/v1/hunts", map[string]any{"sql": "SELECT pid FROM processes;", "targets": "all", "deadline": "10m"})
	if code != 201 {
		t.Fatalf("create hunt: %d %v", code, h)
	}
	hunt := h["id"].(string)

	rd := f.read(key)
	if !probed(rd) || huntQueries(rd)[hunt] == nil {
		t.Fatalf("first read: want the hunt and the schema probe, got %v", rd)
	}
	// Enrolled here anew: the store cannot know its tables, and is not asked.
	if n := counter.calls.Load(); n != 0 {
		t.Errorf("the first read of a host enrolled anew asked the store for its schema %d times", n)
	}
	if dl, _ := rd["quarry_deadlines"].(map[string]any)[SchemaProbeID].(float64); int64(dl) <= f.clock.Now().Unix() {
		t.Errorf("the probe's deadline %v is not ahead", rd["quarry_deadlines"])
	}
	if rd := f.read(key); probed(rd) {
		t.Fatalf("probe sent again before the host could answer: %v", rd)
	}
	code, _ = f.osquery("distributed/write", map[string]any{"node_key": key,
		"queries":  map[string]any{hunt: []any{map[string]string{"pid": "1"}}, SchemaProbeID: osquerySchemaRows},
		"statuses": map[string]any{hunt: 0, SchemaProbeID: 0}, "messages": map[string]any{}})
	if code != 200 {
		t.Fatalf("write: %d", code)
	}
	// The hunt got its row, not the probe's.
	if _, h := f.api("GET", "/api/v1/hunts/"+hunt, nil); h["rows_total"] != float64(1) {
		t.Errorf("hunt after the write: %v rows, want 1", h["rows_total"])
	}
	p := fleetTable(t, f.st, "processes")
	want := []store.TableColumn{{Name: "pid", Type: "BIGINT"}, {Name: "name", Type: "TEXT"}, {Name: "path", Type: "TEXT"},
		{Name: "cmdline", Type: "TEXT"}, {Name: "pid_with_namespace", Type: "INTEGER", Hidden: true}}
	if p == nil || p.Hosts != 1 || len(p.Platforms) != 1 || p.Platforms[0] != "linux" || len(p.Columns) != len(want) {
		t.Fatalf("processes in the store: %+v", p)
	}
	for i := range want {
		if p.Columns[i] != want[i] {
			t.Errorf("processes column %d = %+v, want %+v", i, p.Columns[i], want[i])
		}
	}
	if u := fleetTable(t, f.st, "users"); u == nil || len(u.Columns) != 4 || u.Columns[3].Name != "uuid" {
		t.Errorf("users in the store: %+v", u)
	}
	if l := fleetTable(t, f.st, "listening_ports"); l == nil || l.Columns[1].Name != "port" {
		t.Errorf("listening_ports in the store: %+v", l)
	}
	if o := fleetTable(t, f.st, "odd"); o != nil {
		t.Errorf("an unreadable definition was stored: %+v", o)
	}

	// Known: reads cost no store lookup, and bring no probe, however
	// long after (unlike an error, an answer holds).
	f.clock.Add(2 * DefaultSchemaRetry)
	before := counter.calls.Load()
	for range 20 {
		if rd := f.read(key); probed(rd) {
			t.Fatalf("probe sent again after the answer: %v", rd)
		}
	}
	if n := counter.calls.Load() - before; n != 0 {
		t.Errorf("20 reads of a known host asked the store for its schema %d times", n)
	}
	// Another server on the same store learns it from the store, once.
	g := newFixture(t, counter, func(c *Config) { c.Now = f.clock.Now })
	before = counter.calls.Load()
	for range 3 {
		if rd := g.read(key); probed(rd) {
			t.Fatalf("another server probed a host the store knows: %v", rd)
		}
	}
	if n := counter.calls.Load() - before; n != 1 {
		t.Errorf("another server asked the store %d times, want once", n)
	}

	// Enrolled again at the same versions: the store has its tables, no
	// probe.
	_, out := f.osquery("enroll", enrollBody("host-a", "host-a.example", "ubuntu", testSecret))
	if rd := f.read(out["node_key"].(string)); probed(rd) {
		t.Fatalf("probe after enrolling again at the same versions: %v", rd)
	}

	// osquery upgraded: the host enrolls again with its new version and is
	// probed again.
	body := enrollBody("host-a", "host-a.example", "ubuntu", testSecret)
	body["host_details"].(map[string]any)["osquery_info"].(map[string]any)["version"] = "5.13.0"
	_, out = f.osquery("enroll", body)
	newKey, _ := out["node_key"].(string)
	if rd := f.read(newKey); !probed(rd) {
		t.Fatalf("no probe after the osquery version changed: %v", rd)
	}
}

// A host answering the probe with an error is recorded as "schema
// unavailable" and not probed again until Config.SchemaRetry has passed.
func TestSchemaProbeError(t *testing.T) {
	f := newFixture(t, openSQLite(t))
	key := f.enroll("host-b", "ubuntu")
	if rd := f.read(key); !probed(rd) {
		t.Fatalf("first read without the probe: %v", rd)
	}
	if code, _ := f.osquery("distributed/write", map[string]any{"node_key": key, "queries": map[string]any{SchemaProbeID: ""},
		"statuses": map[string]any{SchemaProbeID: 1}, "messages": map[string]any{SchemaProbeID: "not authorized"}}); code != 200 {
		t.Fatalf("write: %d", code)
	}
	hosts, err := f.st.Hosts(context.Background())
	if err != nil || len(hosts) != 1 {
		t.Fatal(hosts, err)
	}
	st, err := f.st.HostSchemaStatus(context.Background(), hosts[0].ID)
	if err != nil || st.Error != "not authorized" {
		t.Fatalf("schema status after the error: %+v, %v", st, err)
	}
	if all, err := f.st.FleetTables(context.Background()); err != nil || len(all) != 0 {
		t.Fatalf("tables after an error answer: %+v, %v", all, err)
	}
	f.clock.Add(DefaultSchemaRetry / 2)
	if rd := f.read(key); probed(rd) {
		t.Fatalf("probed again at once after an error: %v", rd)
	}
	// Nor by a server that starts meanwhile (it asks the store).
	g := newFixture(t, f.st, func(c *Config) { c.Now = f.clock.Now })
	if rd := g.read(key); probed(rd) {
		t.Fatalf("a new server probed again within the retry period: %v", rd)
	}
	f.clock.Add(DefaultSchemaRetry/2 + time.Second)
	if rd := f.read(key); !probed(rd) {
		t.Fatalf("not probed again after the retry period: %v", rd)
	}
	if rd := g.read(key); !probed(rd) {
		t.Fatalf("the other server did not probe again after the retry period: %v", rd)
	}
}

// GET /api/v1/tables lists Quarry's tables, then those only hosts
// reported, with their host counts.
func TestTablesAPI(t *testing.T) {
	f := newFixture(t, openSQLite(t))
	key := f.enroll("host-a", "ubuntu")
	f.read(key)
	f.osquery("distributed/write", map[string]any{"node_key": key, "queries": map[string]any{SchemaProbeID: osquerySchemaRows},
		"statuses": map[string]any{SchemaProbeID: 0}})
	if code, _ := f.do("GET", "/api/v1/tables", nil, nil); code != 401 {
		t.Errorf("without a token: %d, want 401", code)
	}
	code, out := f.api("GET", "/api/v1/tables", nil)
	if code != 200 {
		t.Fatalf("GET /api/v1/tables: %d %v", code, out)
	}
	bySource := map[string]map[string]map[string]any{}
	lastSource := ""
	for _, raw := range out["tables"].([]any) {
		tv := raw.(map[string]any)
		src := tv["source"].(string)
		if src == "quarry" && lastSource == "hosts" {
			t.Errorf("a Quarry table (%v) after the host tables", tv["name"])
		}
		lastSource = src
		if bySource[src] == nil {
			bySource[src] = map[string]map[string]any{}
		}
		bySource[src][tv["name"].(string)] = tv
	}
	if bySource["quarry"]["ioa_hits"] == nil {
		t.Errorf("Quarry's ioa_hits not listed: %v", bySource["quarry"])
	}
	p := bySource["hosts"]["processes"]
	if p == nil || p["hosts"] != float64(1) || len(p["columns"].([]any)) != 5 || p["platforms"].([]any)[0] != "linux" {
		t.Errorf("processes: %v", p)
	}
}

// Quarry's agent runs the probe on its embedded engine: the authorizer
// lets it read sqlite_temp_master, where the agent has no tables (they sit
// in main, declared without columns), so it answers no rows and no error.
func TestSchemaProbeOnQuarryEngine(t *testing.T) {
	reg := tables.NewRegistry()
	if err := reg.Register(catalog.Schemas(kb(t))...); err != nil {
		t.Fatal(err)
	}
	e, err := sqlengine.Open(reg)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	rows, err := e.Query(context.Background(), SchemaProbeSQL)
	if err != nil {
		t.Fatalf("the probe on Quarry's engine: %v", err)
	}
	defer rows.Close()
	var n int
	for rows.Next() {
		var name, def string
		if err := rows.Scan(&name, &def); err != nil {
			t.Fatal(err)
		}
		if _, cols, _ := ParseTableDefinition(def); len(cols) != 0 {
			t.Errorf("%s: columns %v from the agent's definition %q", name, cols, def)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	// The same engine's sqlite_master definitions carry no columns either.
	rows2, err := e.Query(context.Background(), "SELECT name, sql FROM sqlite_master WHERE type = 'table'")
	if err != nil {
		t.Fatal(err)
	}
	defer rows2.Close()
	var main int
	for rows2.Next() {
		var name, def string
		if err := rows2.Scan(&name, &def); err != nil {
			t.Fatal(err)
		}
		if tname, cols, ok := ParseTableDefinition(def); !ok || tname != name || len(cols) != 0 {
			t.Errorf("agent table %s: %q parsed as %q, %v, %v", name, def, tname, cols, ok)
		}
		main++
	}
	if n != 0 || main == 0 {
		t.Errorf("temp tables %d (want 0), main tables %d (want some)", n, main)
	}
}
