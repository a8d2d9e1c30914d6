package server

import (
	"testing"
	"time"
)

func TestHuntLifecycle(t *testing.T) {
	f := newFixture(t, openSQLite(t))
	a := f.enroll("host-a", "ubuntu")
	b := f.enroll("host-b", "ubuntu")
	c := f.enroll("host-c", "ubuntu") // stays silent
	mac := f.enroll("host-mac", "darwin")

	code, h := f.api("POST", "/api/v1/hunts", map[string]any{"sql": "SELECT pid, name FROM processes;",
		"targets": map[string]any{"platform": "linux"}, "deadline": "10m"})
	if code != 201 || h["id"] == "" || h["counts"].(map[string]any)["pending"] != float64(3) {
		t.Fatalf("create hunt: %d %v", code, h)
	}
	id := h["id"].(string)
	// Host A asks, runs, answers.
	code, rd := f.osquery("distributed/read", map[string]any{"node_key": a})
	if q := rd["queries"].(map[string]any); code != 200 || q[id] != "SELECT pid, name FROM processes;" {
		t.Fatalf("read A: %d %v", code, rd)
	}
	if dl, _ := rd["quarry_deadlines"].(map[string]any)[id].(float64); int64(dl) != f.clock.Now().Add(10*time.Minute).Unix() {
		t.Errorf("read A: the hunt's deadline = %v, want 10 minutes ahead", rd["quarry_deadlines"])
	}
	if _, rd := f.osquery("distributed/read", map[string]any{"node_key": mac}); len(huntQueries(rd)) != 0 {
		t.Errorf("the Mac got a linux hunt: %v", rd)
	}
	// Asked again at once: not handed out twice.
	if _, rd := f.osquery("distributed/read", map[string]any{"node_key": a}); len(huntQueries(rd)) != 0 {
		t.Errorf("hunt handed out twice: %v", rd)
	}
	code, wr := f.osquery("distributed/write", map[string]any{"node_key": a,
		"queries":  map[string]any{id: []any{map[string]string{"pid": "1", "name": "systemd"}, map[string]string{"pid": "2", "name": "kthreadd"}}},
		"statuses": map[string]any{id: 0}, "messages": map[string]any{}, "stats": map[string]any{}})
	if code != 200 || wr["node_invalid"] != false {
		t.Fatalf("write A: %d %v", code, wr)
	}
	// Host B fails: osquery reports a status and a message.
	f.osquery("distributed/read", map[string]any{"node_key": b})
	if code, _ := f.osquery("distributed/write", map[string]any{"node_key": b, "queries": map[string]any{id: ""},
		"statuses": map[string]any{id: 1}, "messages": map[string]any{id: "no such table: processes"}}); code != 200 {
		t.Fatal(code)
	}
	// Answers to unknown hunts are dropped quietly.
	if code, _ := f.osquery("distributed/write", map[string]any{"node_key": b, "queries": map[string]any{"nope": []any{}}}); code != 200 {
		t.Fatal(code)
	}
	code, h = f.api("GET", "/api/v1/hunts/"+id, nil)
	if code != 200 || h["done"] != false {
		t.Fatalf("get hunt: %d %v", code, h)
	}
	status := map[string]map[string]any{}
	for _, hh := range h["hosts"].([]any) {
		hh := hh.(map[string]any)
		status[hh["host_identifier"].(string)] = hh
	}
	if status["host-a"]["status"] != "answered" || status["host-a"]["rows"] != float64(2) ||
		status["host-b"]["status"] != "error" || status["host-b"]["message"] != "no such table: processes" ||
		status["host-c"]["status"] != "pending" || len(status) != 3 {
		t.Errorf("hosts = %v", status)
	}
	rows := h["rows"].([]any)
	if len(rows) != 2 || rows[0].(map[string]any)["host_identifier"] != "host-a" ||
		rows[1].(map[string]any)["columns"].(map[string]any)["name"] != "kthreadd" {
		t.Errorf("rows = %v", rows)
	}
	// Without the per-host list: the same counts and totals.
	code, sum := f.api("GET", "/api/v1/hunts/"+id+"?hosts=false&limit=1", nil)
	if c := sum["counts"].(map[string]any); code != 200 || len(sum["hosts"].([]any)) != 0 || sum["done"] != false ||
		c["answered"] != float64(1) || c["error"] != float64(1) || c["pending"] != float64(1) || c["expired"] != float64(0) ||
		sum["rows_total"] != float64(2) || len(sum["rows"].([]any)) != 1 {
		t.Errorf("hunt without hosts: %d %v", code, sum)
	}
	if code, _ := f.api("GET", "/api/v1/hunts/"+id+"?hosts=maybe", nil); code != 400 {
		t.Errorf("hosts=maybe: %d, want 400", code)
	}
	// Past the deadline, the silent host is expired and a late answer is dropped.
	f.clock.Add(11 * time.Minute)
	if _, rd := f.osquery("distributed/read", map[string]any{"node_key": c}); len(huntQueries(rd)) != 0 {
		t.Errorf("expired hunt handed out: %v", rd)
	}
	f.osquery("distributed/write", map[string]any{"node_key": c, "queries": map[string]any{id: []any{map[string]string{"pid": "9"}}},
		"statuses": map[string]any{id: 0}})
	_, h = f.api("GET", "/api/v1/hunts/"+id, nil)
	counts := h["counts"].(map[string]any)
	if h["done"] != true || counts["expired"] != float64(1) || counts["answered"] != float64(1) || counts["error"] != float64(1) ||
		h["rows_total"] != float64(2) {
		t.Errorf("after deadline: done %v counts %v rows %v", h["done"], counts, h["rows_total"])
	}
	_, sum = f.api("GET", "/api/v1/hunts/"+id+"?hosts=false", nil)
	if c := sum["counts"].(map[string]any); sum["done"] != true || c["expired"] != float64(1) || c["pending"] != float64(0) {
		t.Errorf("after deadline without hosts: done %v counts %v", sum["done"], c)
	}
	if code, _ := f.api("GET", "/api/v1/hunts/does-not-exist", nil); code != 404 {
		t.Errorf("unknown hunt: %d", code)
	}
}

func TestHuntReachesHostReturningBeforeDeadline(t *testing.T) {
	f := newFixture(t, openSQLite(t))
	a := f.enroll("host-a", "ubuntu")
	f.clock.Add(time.Hour) // host-a is offline now
	_, h := f.api("POST", "/api/v1/hunts", map[string]any{"sql": "SELECT 1 AS one;", "targets": map[string]any{"hosts": []string{"host-a"}},
		"deadline": 3600})
	id := h["id"].(string)
	f.clock.Add(30 * time.Minute) // it returns within the deadline
	if _, rd := f.osquery("distributed/read", map[string]any{"node_key": a}); rd["queries"].(map[string]any)[id] == nil {
		t.Fatalf("returning host did not get the hunt: %v", rd)
	}
	// Its answer got lost: after the resend interval it gets the hunt again.
	f.clock.Add(DefaultHuntResend + time.Second)
	if _, rd := f.osquery("distributed/read", map[string]any{"node_key": a}); rd["queries"].(map[string]any)[id] == nil {
		t.Fatalf("hunt not handed out again: %v", rd)
	}
}

func TestHuntRequestValidation(t *testing.T) {
	f := newFixture(t, openSQLite(t))
	f.enroll("host-a", "ubuntu")
	for _, body := range []any{
		map[string]any{},
		map[string]any{"sql": "   "},
		map[string]any{"sql": "SELECT 1", "targets": map[string]any{"hosts": []string{"ghost"}}},
		map[string]any{"sql": "SELECT 1", "targets": map[string]any{"platform": "windows"}},
		map[string]any{"sql": "SELECT 1", "targets": "some"},
		map[string]any{"sql": "SELECT 1", "targets": map[string]any{"all": true, "platform": "linux"}},
		map[string]any{"sql": "SELECT 1", "deadline": "-5m"},
		map[string]any{"sql": "SELECT 1", "deadline": "soon"},
		map[string]any{"sql": "SELECT 1", "deadline": "9000h"},
		[]byte(`{"sql": "SELECT 1"`),
	} {
		if code, out := f.api("POST", "/api/v1/hunts", body); code != 400 {
			t.Errorf("hunt %v: %d %v, want 400", body, code, out)
		}
	}
	if code, h := f.api("POST", "/api/v1/hunts", map[string]any{"sql": "SELECT 1", "targets": "all"}); code != 201 ||
		h["targets"].(map[string]any)["all"] != true {
		t.Errorf("targets all: %d %v", code, h)
	}
}
