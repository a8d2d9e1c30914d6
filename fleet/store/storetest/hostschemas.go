package storetest

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/fleet/store"
)

func cols(spec ...string) []store.TableColumn {
	var out []store.TableColumn
	for i := 0; i+1 < len(spec); i += 2 {
		out = append(out, store.TableColumn{Name: spec[i], Type: spec[i+1]})
	}
	return out
}

// testHostSchemas: the tables hosts report are listed over the fleet, one
// entry per table with the union of its columns, how many hosts have it and
// their platform families; a host's new report replaces its old one; an
// error report is remembered and adds no tables.
func testHostSchemas(t *testing.T, s store.Store) {
	a := enroll(t, s, "host-a", "ka", "linux")
	b := enroll(t, s, "host-b", "kb", "linux")
	m := enroll(t, s, "host-m", "km", "darwin")
	e := enroll(t, s, "host-e", "ke", "windows")
	if _, err := s.HostSchemaStatus(ctx, a.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("HostSchemaStatus before any report: err = %v, want ErrNotFound", err)
	}
	if got, err := s.FleetTables(ctx); err != nil || len(got) != 0 {
		t.Fatalf("FleetTables before any report = %+v, %v", got, err)
	}
	procs := cols("pid", "BIGINT", "name", "TEXT")
	hidden := store.TableColumn{Name: "pid_with_namespace", Type: "INTEGER", Hidden: true}
	put := func(h *store.Host, version, errMsg string, tables ...store.HostTable) {
		t.Helper()
		if err := s.PutHostSchema(ctx, &store.HostSchema{HostID: h.ID, Version: version, ReportedAt: base,
			Error: errMsg, Tables: tables}); err != nil {
			t.Fatalf("PutHostSchema %s: %v", h.HostIdentifier, err)
		}
	}
	put(a, "osquery 5.12.1", "",
		store.HostTable{Name: "processes", Columns: append(append([]store.TableColumn{}, procs...), hidden)},
		store.HostTable{Name: "users", Columns: cols("uid", "BIGINT", "username", "TEXT")})
	put(m, "osquery 5.12.1", "",
		store.HostTable{Name: "processes", Columns: append(append([]store.TableColumn{}, procs...), hidden)},
		store.HostTable{Name: "apps", Columns: cols("name", "TEXT", "bundle_identifier", "TEXT")})
	// A newer osquery: one more column.
	put(b, "osquery 5.13.0", "", store.HostTable{Name: "processes", Columns: cols("pid", "BIGINT", "cgroup_path", "TEXT")})
	put(e, "osquery 5.12.1", "no such table: sqlite_temp_master")

	got, err := s.FleetTables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.FleetTable{
		{Name: "apps", Columns: cols("name", "TEXT", "bundle_identifier", "TEXT"), Hosts: 1, Platforms: []string{"darwin"}},
		{Name: "processes", Columns: append(append(append([]store.TableColumn{}, procs...), hidden),
			store.TableColumn{Name: "cgroup_path", Type: "TEXT"}), Hosts: 3, Platforms: []string{"darwin", "linux"}},
		{Name: "users", Columns: cols("uid", "BIGINT", "username", "TEXT"), Hosts: 1, Platforms: []string{"linux"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("FleetTables =\n%+v\nwant\n%+v", got, want)
	}

	st, err := s.HostSchemaStatus(ctx, b.ID)
	if err != nil || st.Version != "osquery 5.13.0" || st.Error != "" || !st.ReportedAt.Equal(base) {
		t.Fatalf("HostSchemaStatus(b) = %+v, %v", st, err)
	}
	if st, err := s.HostSchemaStatus(ctx, e.ID); err != nil || st.Error != "no such table: sqlite_temp_master" {
		t.Fatalf("HostSchemaStatus of the failed host = %+v, %v", st, err)
	}

	// Host A reports again without users (and then reports the same table
	// twice: stored once): users is gone, processes still has 3 hosts.
	later := base.Add(time.Hour)
	if err := s.PutHostSchema(ctx, &store.HostSchema{HostID: a.ID, Version: "osquery 5.12.1", ReportedAt: later,
		Tables: []store.HostTable{{Name: "processes", Columns: procs}, {Name: "processes", Columns: procs}}}); err != nil {
		t.Fatal(err)
	}
	got, err = s.FleetTables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "apps" || got[1].Name != "processes" || got[1].Hosts != 3 {
		t.Fatalf("after host A's new report: %+v", got)
	}
	if st, err := s.HostSchemaStatus(ctx, a.ID); err != nil || !st.ReportedAt.Equal(later) {
		t.Fatalf("HostSchemaStatus(a) after its new report = %+v, %v", st, err)
	}
	// The failed host answers at last: its error is replaced.
	put(e, "osquery 5.12.1", "", store.HostTable{Name: "processes", Columns: procs})
	if st, err := s.HostSchemaStatus(ctx, e.ID); err != nil || st.Error != "" {
		t.Fatalf("HostSchemaStatus after a good report = %+v, %v", st, err)
	}
	got, err = s.FleetTables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got[1].Hosts != 4 || !reflect.DeepEqual(got[1].Platforms, []string{"darwin", "linux", "windows"}) {
		t.Fatalf("processes after host E's report: %+v", got[1])
	}
}
