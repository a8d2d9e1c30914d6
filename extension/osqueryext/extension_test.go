package osqueryext

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/extension/osqueryext/osquerytest"
	"github.com/quarry-sec/quarry/tables"
	"github.com/quarry-sec/quarry/tables/catalog"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

const waitLong = 10 * time.Second

// noLeaks checks, after every other cleanup of t, that no goroutine started
// during the test is still running.
func noLeaks(t *testing.T) {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// testRegistry is the real catalog (ATT&CK and process_events over an empty
// store) plus the recorder table.
func testRegistry(t testing.TB, rec *recorder) *tables.Registry {
	t.Helper()
	kb, err := attack.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	st, err := eventstore.Open(filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reg, err := catalog.New(catalog.Sources{ATTACK: kb, Events: st})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(recorderTable(rec)); err != nil {
		t.Fatal(err)
	}
	return reg
}

// harness is an extension running against a fake osqueryd.
type harness struct {
	fake       *osquerytest.Fake
	ext        *Extension
	reg        osquerytest.Registration
	client     *osquerytest.Client
	cancel     context.CancelFunc
	done       chan error
	onRegCalls atomic.Int32
	started    time.Time
	registered chan time.Duration // start to OnRegistered, once
}

func startExtension(t testing.TB, reg *tables.Registry, cfg Config, coreTables ...string) *harness {
	t.Helper()
	fake, err := osquerytest.Start(coreTables...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := fake.Close(); err != nil {
			t.Errorf("fake osqueryd close: %v", err)
		}
	})
	h := &harness{fake: fake, done: make(chan error, 1), registered: make(chan time.Duration, 1)}
	cfg.Socket = fake.Socket
	cfg.OnRegistered = func(int64) {
		if h.onRegCalls.Add(1) == 1 {
			h.registered <- time.Since(h.started)
		}
	}
	h.ext, err = New(reg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.started = time.Now()
	go func() { h.done <- h.ext.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if h.client != nil {
			h.client.Close()
		}
		select {
		case <-h.done:
		case <-time.After(waitLong):
			t.Error("extension did not stop")
		}
	})
	wctx, wcancel := context.WithTimeout(ctx, waitLong)
	defer wcancel()
	h.reg, err = fake.WaitRegistered(wctx)
	if err != nil {
		t.Fatal(err)
	}
	h.client, err = fake.Dial(wctx, h.reg.UUID)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// wantRoutes renders a table's columns as osquery route info, computed
// independently of the adapter.
func wantRoutes(tbl *tables.Table) []map[string]string {
	var out []map[string]string
	for _, c := range tbl.Columns {
		op := 0
		if c.Index {
			op |= 1
		}
		if c.Required {
			op |= 2
		}
		if c.Additional {
			op |= 4
		}
		if c.Hidden {
			op |= 16
		}
		typ := map[tables.ColumnType]string{tables.Text: "TEXT", tables.Integer: "INTEGER",
			tables.BigInt: "BIGINT", tables.Double: "DOUBLE"}[c.Type]
		out = append(out, map[string]string{"id": "column", "name": c.Name, "type": typ, "op": strconv.Itoa(op)})
	}
	return out
}

func TestRegistersEveryTableWithTypesAndFlags(t *testing.T) {
	noLeaks(t)
	reg := testRegistry(t, &recorder{})
	h := startExtension(t, reg, Config{Version: "1.2.3-test"})

	if h.reg.Info.Name != "quarry" || h.reg.Info.Version != "1.2.3-test" {
		t.Errorf("registered as %q %q, want quarry 1.2.3-test", h.reg.Info.Name, h.reg.Info.Version)
	}
	got := h.reg.Registry["table"]
	var gotNames []string
	for name := range got {
		gotNames = append(gotNames, name)
	}
	sort.Strings(gotNames)
	if !reflect.DeepEqual(gotNames, reg.Names()) {
		t.Fatalf("tables registered:\n got %v\nwant %v", gotNames, reg.Names())
	}
	for _, tbl := range reg.Tables() {
		routes := []map[string]string(got[tbl.Name])
		if !reflect.DeepEqual(routes, wantRoutes(tbl)) {
			t.Errorf("%s routes\n got %v\nwant %v", tbl.Name, routes, wantRoutes(tbl))
		}
	}
	for reg, items := range h.reg.Registry {
		if reg != "table" && len(items) != 0 {
			t.Errorf("registry %s has %d items, want none", reg, len(items))
		}
	}
	// Spot checks of what osqueryd forwards: index and additional columns.
	op := func(table, col string) string {
		for _, r := range got[table] {
			if r["name"] == col {
				return r["type"] + "/" + r["op"]
			}
		}
		return "missing"
	}
	for _, c := range []struct{ table, col, want string }{
		{"attack_techniques", "id", "TEXT/1"},
		{"attack_technique_tactics", "technique_id", "TEXT/1"},
		{"process_events", "time", "BIGINT/4"},
		{"process_events", "pid", "BIGINT/4"},
		{"quarry_test_recorder", "secret", "TEXT/16"},
		{"quarry_test_recorder", "req", "TEXT/2"},
		{"quarry_test_recorder", "d", "DOUBLE/4"},
		{"quarry_test_recorder", "i", "INTEGER/4"},
	} {
		if g := op(c.table, c.col); g != c.want {
			t.Errorf("%s.%s = %s, want %s", c.table, c.col, g, c.want)
		}
	}
	select {
	case d := <-h.registered:
		t.Logf("start to registered (dial + register %d tables, in process): %v", len(gotNames), d)
	case <-time.After(waitLong):
		t.Fatal("OnRegistered not called")
	}
	if err := h.client.Ping(context.Background()); err != nil { // a round trip after the hook
		t.Fatal(err)
	}
	if n := h.onRegCalls.Load(); n != 1 {
		t.Errorf("OnRegistered called %d times, want 1", n)
	}
}

func TestGenerateThroughSocket(t *testing.T) {
	noLeaks(t)
	rec := &recorder{}
	h := startExtension(t, testRegistry(t, rec), Config{})
	ctx := context.Background()
	cases := []struct {
		name    string
		json    string
		want    []tables.Constraint
		used    map[string]bool
		rows    []map[string]string
		rowsLen int
	}{
		{
			name: "no constraints, osquery < 4 (no colsUsed): every column",
			json: `{"constraints":[{"name":"id","list":"","affinity":"TEXT"}]}`,
			rows: recorderWant,
		},
		{
			name: "text = on the index column",
			json: `{"constraints":[{"name":"id","list":[{"op":2,"expr":"T1003.001"}],"affinity":"TEXT"},{"name":"n","list":[],"affinity":"BIGINT"}]}`,
			want: []tables.Constraint{{Column: "id", Op: tables.OpEQ, Value: "T1003.001"}},
			rows: recorderWant,
		},
		{
			name: "IN and ranges, typed, with colsUsed",
			json: `{"constraints":[{"name":"id","list":[{"op":2,"expr":"a"},{"op":2,"expr":"b"}],"affinity":"TEXT"},
				{"name":"n","list":[{"op":32,"expr":"1"},{"op":16,"expr":"100"}],"affinity":"BIGINT"},
				{"name":"d","list":[{"op":4,"expr":"0.5"}],"affinity":"DOUBLE"},
				{"name":"name","list":[{"op":65,"expr":"al%"}],"affinity":"TEXT"}],
				"colsUsed":["id","n","d","name"],"colsUsedBitset":27}`,
			want: []tables.Constraint{
				{Column: "id", Op: tables.OpIN, Values: []any{"a", "b"}},
				{Column: "n", Op: tables.OpGE, Value: int64(1)},
				{Column: "n", Op: tables.OpLT, Value: int64(100)},
				{Column: "d", Op: tables.OpGT, Value: 0.5},
				{Column: "name", Op: tables.OpLIKE, Value: "al%"},
			},
			used: map[string]bool{"id": true, "n": true, "d": true, "name": true},
			rows: []map[string]string{
				{"id": "a", "n": "1", "d": "1.5", "name": "alpha"},
				{"id": "b", "n": "9007199254740993"}, // d and name are NULL: left out
				{"id": "c", "n": "-9223372036854775808", "d": "1000000000000000000000", "name": "gamma, with \"quotes\"\n"},
			},
		},
		{
			name:    "count(*): no column used",
			json:    `{"constraints":[],"colsUsed":[],"colsUsedBitset":0}`,
			used:    map[string]bool{},
			rowsLen: 3,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rows, err := h.client.Generate(ctx, "quarry_test_recorder", c.json)
			if err != nil {
				t.Fatal(err)
			}
			got := rec.contexts()
			q := got[len(got)-1]
			if !reflect.DeepEqual(q.Constraints, c.want) {
				t.Errorf("constraints\n got %v\nwant %v", q.Constraints, c.want)
			}
			if !reflect.DeepEqual(q.UsedColumns, c.used) {
				t.Errorf("used columns: got %v, want %v", q.UsedColumns, c.used)
			}
			if c.rows != nil && !reflect.DeepEqual(rows, c.rows) {
				t.Errorf("rows\n got %v\nwant %v", rows, c.rows)
			}
			if c.rows == nil && (len(rows) != c.rowsLen || len(rows[0]) != 0) {
				t.Errorf("got %v, want %d empty rows", rows, c.rowsLen)
			}
		})
	}
}

func TestGenerateRealCatalog(t *testing.T) {
	noLeaks(t)
	h := startExtension(t, testRegistry(t, &recorder{}), Config{})
	ctx := context.Background()
	rows, err := h.client.Generate(ctx, "attack_techniques",
		`{"constraints":[{"name":"id","list":[{"op":2,"expr":"T1003.001"}],"affinity":"TEXT"}],"colsUsed":["id","name","is_subtechnique","parent_id"]}`)
	if err != nil {
		t.Fatal(err)
	}
	want := []map[string]string{{"id": "T1003.001", "name": "LSASS Memory", "is_subtechnique": "1", "parent_id": "T1003"}}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("T1003.001: got %v, want %v", rows, want)
	}
	rows, err = h.client.Generate(ctx, "attack_technique_tactics",
		`{"constraints":[{"name":"technique_id","list":[{"op":2,"expr":"T1003.001"},{"op":2,"expr":"T1059.001"}],"affinity":"TEXT"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range rows {
		seen[r["technique_id"]+"/"+r["tactic"]] = true
	}
	if !seen["T1003.001/credential-access"] || !seen["T1059.001/execution"] {
		t.Errorf("technique tactics for an IN list: got %v", rows)
	}
	rows, err = h.client.Generate(ctx, "process_events", `{"constraints":[{"name":"time","list":[{"op":32,"expr":"0"}],"affinity":"BIGINT"}]}`)
	if err != nil || len(rows) != 0 {
		t.Errorf("process_events over an empty store: %v, %v", rows, err)
	}
	if err := h.client.Ping(ctx); err != nil {
		t.Errorf("ping: %v", err)
	}
}

func TestGenerateErrors(t *testing.T) {
	noLeaks(t)
	rec := &recorder{}
	h := startExtension(t, testRegistry(t, rec), Config{MaxRows: 2})
	ctx := context.Background()
	wantStatus := func(what string, err error, sub string) {
		t.Helper()
		var se *osquerytest.StatusError
		if !errors.As(err, &se) || se.Code != 1 || !strings.Contains(se.Message, sub) {
			t.Errorf("%s: err = %v, want status 1 containing %q", what, err, sub)
		}
	}
	_, err := h.client.Generate(ctx, "quarry_test_recorder", `{"constraints":[]}`)
	wantStatus("over MaxRows", err, "too many rows")
	_, err = h.client.Generate(ctx, "quarry_test_recorder", `{"constraints":[{"name":"id","list":{}}]}`)
	wantStatus("bad context", err, "query context")
	_, err = h.client.Generate(ctx, "no_such_table", `{}`)
	wantStatus("unknown table", err, "no_such_table")
	_, err = h.client.Call(ctx, "attack_tactics", map[string]string{"action": "delete"})
	wantStatus("delete", err, "read-only")

	rec.mu.Lock()
	rec.fail = errBoom
	rec.mu.Unlock()
	_, err = h.client.Generate(ctx, "quarry_test_recorder", `{"constraints":[]}`)
	wantStatus("failing table", err, "boom")

	cols, err := h.client.Call(ctx, "quarry_test_recorder", map[string]string{"action": "columns"})
	if err != nil {
		t.Fatal(err)
	}
	tbl := recorderTable(rec)
	if !reflect.DeepEqual(cols, wantRoutes(&tbl)) {
		t.Errorf("columns action: got %v", cols)
	}
}

func TestShutdownRequestedByOsquery(t *testing.T) {
	noLeaks(t)
	h := startExtension(t, testRegistry(t, &recorder{}), Config{Interval: 20 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := h.client.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if uuid, err := h.fake.WaitDeregistered(ctx); err != nil || uuid != h.reg.UUID {
		t.Errorf("deregistered %d, %v; want %d", uuid, err, h.reg.UUID)
	}
	h.client.Close() // osqueryd goes away
	select {
	case err := <-h.done:
		if err != nil {
			t.Errorf("Run after osquery's shutdown: %v, want nil", err)
		}
		h.done <- err // for the cleanup
	case <-ctx.Done():
		t.Fatal("Run did not return after shutdown")
	}
}

func TestStopsWhenContextEnds(t *testing.T) {
	noLeaks(t)
	h := startExtension(t, testRegistry(t, &recorder{}), Config{})
	h.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if uuid, err := h.fake.WaitDeregistered(ctx); err != nil || uuid != h.reg.UUID {
		t.Errorf("deregistered %d, %v; want %d", uuid, err, h.reg.UUID)
	}
	h.client.Close()
	if err := <-h.done; err != nil {
		t.Errorf("Run: %v, want nil", err)
	}
	h.done <- nil
}

func TestStopsWhenOsqueryStopsAnswering(t *testing.T) {
	noLeaks(t)
	h := startExtension(t, testRegistry(t, &recorder{}), Config{Interval: 20 * time.Millisecond})
	h.fake.FailPings(true)
	h.client.Close()
	select {
	case err := <-h.done:
		if !errors.Is(err, ErrOsqueryGone) {
			t.Errorf("Run: %v, want ErrOsqueryGone", err)
		}
		h.done <- err
	case <-time.After(waitLong):
		t.Fatal("Run did not notice osquery going away")
	}
}

func TestDuplicateTableNames(t *testing.T) {
	noLeaks(t)
	reg := testRegistry(t, &recorder{})

	// Renamed up front, as cmd/quarry-extension does for process_events.
	h := startExtension(t, reg, Config{Renames: map[string]string{"process_events": "quarry_process_events"}}, "process_events")
	if _, ok := h.reg.Registry["table"]["quarry_process_events"]; !ok || len(h.fake.Refused()) != 0 {
		t.Errorf("renamed up front: refused %v, registered %v", h.fake.Refused(), len(h.reg.Registry["table"]))
	}

	// Refused by osqueryd, renamed and registered again.
	h2 := startExtension(t, reg, Config{}, "process_events", "attack_tactics")
	tbls := h2.reg.Registry["table"]
	_, pe := tbls["quarry_process_events"]
	_, ta := tbls["quarry_attack_tactics"]
	if !pe || !ta || len(h2.fake.Refused()) != 2 {
		t.Errorf("refused %v; registered quarry_process_events %v, quarry_attack_tactics %v", h2.fake.Refused(), pe, ta)
	}
	rows, err := h2.client.Generate(context.Background(), "quarry_attack_tactics", `{"constraints":[],"colsUsed":["shortname"]}`)
	if err != nil || len(rows) < 14 {
		t.Errorf("quarry_attack_tactics: %d rows, %v", len(rows), err)
	}
	if n := h2.ext.TableNames()["attack_tactics"]; n != "quarry_attack_tactics" {
		t.Errorf("TableNames()[attack_tactics] = %q", n)
	}
}

func TestNoOsqueryd(t *testing.T) {
	noLeaks(t)
	reg := tables.NewRegistry()
	if err := reg.Register(recorderTable(&recorder{})); err != nil {
		t.Fatal(err)
	}
	ext, err := New(reg, Config{Socket: filepath.Join(t.TempDir(), "absent.em"), Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := ext.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "connect to osquery") {
		t.Errorf("Run without osqueryd: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("gave up after %v, want about the 100ms timeout", d)
	}
	if _, err := New(reg, Config{}); err == nil {
		t.Error("New without a socket succeeded")
	}
	if _, err := New(tables.NewRegistry(), Config{Socket: "x"}); err == nil {
		t.Error("New without tables succeeded")
	}
}
