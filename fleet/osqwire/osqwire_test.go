package osqwire

import (
	"encoding/json"
	"maps"
	"testing"
)

// What the agent writes (rows as maps) reads back on the server's side
// (rows as sent): one type per message, two row representations.
func TestWrittenMessagesReadAsSent(t *testing.T) {
	rows := []map[string]string{{"pid": "1", "path": "/bin/sh"}, {"pid": "2", "path": "<&>"}}
	l := ResultLog[map[string]string]{Name: "pack_p_q", HostIdentifier: "h", CalendarTime: CalendarTime(1700000000),
		UnixTime: 1700000000, Epoch: 3, Counter: 7, Decorations: map[string]string{"host_uuid": "u"},
		DiffResults: &DiffResults[map[string]string]{Added: rows, Removed: []map[string]string{}}}
	b, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	var got ResultLog[json.RawMessage]
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Name != "pack_p_q" || got.UnixTime != 1700000000 || got.Epoch != 3 || got.Counter != 7 ||
		got.DiffResults == nil || len(got.DiffResults.Added) != 2 || len(got.DiffResults.Removed) != 0 || got.Columns != nil {
		t.Fatalf("read back %+v from %s", got, b)
	}
	var row map[string]string
	if err := json.Unmarshal(got.DiffResults.Added[1], &row); err != nil || !maps.Equal(row, rows[1]) {
		t.Errorf("row %s, want %v", got.DiffResults.Added[1], rows[1])
	}
	var decs map[string]string
	if err := json.Unmarshal(got.Decorations, &decs); err != nil || decs["host_uuid"] != "u" {
		t.Errorf("decorations %s", got.Decorations)
	}

	w := DistributedWriteRequest[[]map[string]string]{NodeKey: "k", Queries: map[string][]map[string]string{"h1": rows, "h2": {}},
		Statuses: map[string]Int{"h1": 0, "h2": 1}, Messages: map[string]string{"h2": "no such table"}}
	b, err = json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	var wr DistributedWriteRequest[json.RawMessage]
	if err := json.Unmarshal(b, &wr); err != nil {
		t.Fatal(err)
	}
	if wr.NodeKey != "k" || wr.Statuses["h2"] != 1 || wr.Messages["h2"] != "no such table" || len(wr.Queries["h1"]) == 0 {
		t.Fatalf("read back %+v from %s", wr, b)
	}
}

// osqueryd's own forms: statuses as strings, "" for a failed query's rows,
// event-format result logs, numbers where strings are usual.
func TestOsqueryForms(t *testing.T) {
	var wr DistributedWriteRequest[json.RawMessage]
	if err := json.Unmarshal([]byte(`{"node_key":"k","queries":{"a":"","b":[{"x":"1"}]},"statuses":{"a":"1","b":0}}`), &wr); err != nil {
		t.Fatal(err)
	}
	if wr.Statuses["a"] != 1 || wr.Statuses["b"] != 0 || string(wr.Queries["a"]) != `""` {
		t.Errorf("osquery's write read as %+v", wr)
	}
	var l ResultLog[json.RawMessage]
	if err := json.Unmarshal([]byte(`{"name":"q","unixTime":"1700000000","columns":{"pid":1},"action":"added","numerics":true}`), &l); err != nil {
		t.Fatal(err)
	}
	if l.UnixTime != 1700000000 || string(l.Columns) != `{"pid":1}` || l.Action != "added" || l.DiffResults != nil {
		t.Errorf("event-format log read as %+v", l)
	}
	var e EnrollRequest
	if err := json.Unmarshal([]byte(`{"enroll_secret":"s","host_identifier":"h","platform_type":"9","host_details":
		{"system_info":{"hostname":"web1","physical_memory":8589934592,"virtual":true,"none":null},"platform_info":null}}`), &e); err != nil {
		t.Fatal(err)
	}
	want := Details{"hostname": "web1", "physical_memory": "8589934592", "virtual": "1", "none": ""}
	if !maps.Equal(e.HostDetails["system_info"], want) || e.HostDetails["platform_info"] != nil {
		t.Errorf("host details read as %v", e.HostDetails)
	}
	if err := json.Unmarshal([]byte(`{"host_details":{"system_info":"web1"}}`), &e); err == nil {
		t.Error("a table row that is not an object was accepted")
	}
}

// FuzzDetails: any input reads as a row or an error, never a panic; a row
// of strings reads back as it was written.
func FuzzDetails(f *testing.F) {
	f.Add([]byte(`{"hostname":"web1","physical_memory":8589934592,"virtual":true}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"a":{"b":[1,2]}}`))
	f.Add([]byte(`"web1"`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var d Details
		if json.Unmarshal(b, &d) != nil {
			return
		}
		out, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		var again Details
		if err := json.Unmarshal(out, &again); err != nil || !maps.Equal(d, again) {
			t.Fatalf("%s read as %v, written as %s, read again as %v (%v)", b, d, out, again, err)
		}
	})
}
