package osqueryext

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/tables/catalog"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
	"github.com/quarry-sec/quarry/telemetry/importers"
)

// TestActivityTablesThroughOsquery serves the activity tables' testdata
// through the extension, under the names osquery leaves free
// (quarry_socket_events…), with constraints as osqueryd sends them.
func TestActivityTablesThroughOsquery(t *testing.T) {
	noLeaks(t)
	kb, err := attack.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	st, err := eventstore.Open(filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r, _, err := importers.Open(filepath.Join("..", "..", "tables", "activity", "testdata", "activity.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var evs []telemetry.Event
	for {
		e, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err == nil {
			evs = append(evs, e)
		}
	}
	r.Close()
	if _, err := st.Append(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	reg, err := catalog.New(catalog.Sources{ATTACK: kb, Events: st})
	if err != nil {
		t.Fatal(err)
	}
	h := startExtension(t, reg, Config{Renames: catalog.OsqueryNames()}, "socket_events", "file_events", "process_events")
	if len(h.fake.Refused()) != 0 {
		t.Errorf("osqueryd refused %v", h.fake.Refused())
	}
	ctx := context.Background()
	cases := []struct {
		table, ctx string
		want       []map[string]string
	}{
		{"quarry_socket_events", `{"constraints":[{"name":"pid","list":[{"op":2,"expr":"1234"}],"affinity":"BIGINT"}],"colsUsed":["action","local_port","remote_address"]}`,
			[]map[string]string{{"action": "accept", "local_port": "3389", "remote_address": "192.0.2.44"}, {"action": "bind", "local_port": "3389"}}},
		{"quarry_file_events", `{"constraints":[{"name":"event_id","list":[{"op":2,"expr":"23"}],"affinity":"INTEGER"}],"colsUsed":["action","sha256"]}`,
			[]map[string]string{{"action": "delete", "sha256": "cc22"}}},
		{"registry_events", `{"constraints":[{"name":"event_id","list":[{"op":2,"expr":"4657"}],"affinity":"INTEGER"}],"colsUsed":["key","value_name","details"]}`,
			[]map[string]string{{"key": `HKLM\SOFTWARE\Policies\Microsoft\Windows Defender`, "value_name": "DisableAntiSpyware", "details": "1"}}},
		{"quarry_dns_lookup_events", `{"constraints":[],"colsUsed":["name"]}`, []map[string]string{{"name": "evil.example"}}},
	}
	for _, c := range cases {
		rows, err := h.client.Generate(ctx, c.table, c.ctx)
		if err != nil {
			t.Errorf("%s: %v", c.table, err)
			continue
		}
		// Keep only the columns asked for (NULL ones are left out of a row).
		for _, row := range rows {
			for k := range row {
				if _, ok := c.want[0][k]; !ok {
					delete(row, k)
				}
			}
		}
		if !reflect.DeepEqual(rows, c.want) {
			t.Errorf("%s\n got %v\nwant %v", c.table, rows, c.want)
		}
	}
}
