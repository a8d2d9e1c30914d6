package server

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"testing"

	"github.com/quarry-sec/quarry/detections/packs"
)

// TestDetectionsAPIFields pins the field names (and order) of a detection
// in GET /api/v1/detections: store.Detection's, with telemetry.Hit's
// embedded (the host's identifier shadowing the hit's host).
func TestDetectionsAPIFields(t *testing.T) {
	f := newFixture(t, openSQLite(t))
	key := f.enroll("host-a", "ubuntu")
	now := f.clock.Now()
	if code, _ := f.osquery("log", map[string]any{"node_key": key, "log_type": "result", "data": []any{map[string]any{
		"name": "pack_" + packs.Name + "_" + packs.QueryHits, "unixTime": now.Unix(), "action": "added",
		"columns": hitRow("1", "T1003", "credential-access", "high", now)}}}); code != 200 {
		t.Fatalf("log: %d", code)
	}
	req, _ := http.NewRequest("GET", f.http.URL+"/api/v1/detections", nil)
	req.Header.Set("Authorization", "Bearer "+f.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out struct {
		Detections []json.RawMessage `json:"detections"`
	}
	if err := json.Unmarshal(body, &out); err != nil || len(out.Detections) != 1 {
		t.Fatalf("detections: %v %s", err, body)
	}
	dec := json.NewDecoder(bytes.NewReader(out.Detections[0]))
	dec.Token() // {
	var keys []string
	for dec.More() {
		tok, _ := dec.Token()
		keys = append(keys, tok.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"id", "host_id", "host_identifier", "hostname", "query", "hit_id", "time", "rule_id", "rule_title",
		"rule_author", "rule_source", "technique_id", "technique_name", "tactic", "severity", "confidence", "description",
		"recommendations", "eid", "pid", "path", "cmdline", "parent_path", "username", "source", "detected_at",
		"received_at", "kind"}
	if !slices.Equal(keys, want) {
		t.Errorf("detection fields\n got %q\nwant %q", keys, want)
	}
}
