package main

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// objectKeys returns the keys of the JSON object raw, in order.
func objectKeys(t *testing.T, raw []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object: %s", raw)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("%v in %s", err, raw)
		}
		keys = append(keys, tok.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("%v in %s", err, raw)
		}
	}
	return keys
}

// TestIncidentsJSONFields pins the field names (and order) of `quarry
// incidents --format json`: they are what scripts read.
func TestIncidentsJSONFields(t *testing.T) {
	dir := t.TempDir()
	importChain(t, dir)
	out, errs, code := quarry(t, dir, "", "incidents", "--format", "json")
	if code != 0 {
		t.Fatalf("incidents: exit %d: %s", code, errs)
	}
	line := []byte(strings.SplitN(out, "\n", 2)[0])
	want := []string{"incident_id", "host_identifier", "first_seen", "last_seen", "score", "severity", "tactics",
		"techniques", "hit_count", "root_pid", "root_path", "summary", "hits", "related"}
	if got := objectKeys(t, line); !slices.Equal(got, want) {
		t.Errorf("incident fields\n got %q\nwant %q", got, want)
	}
	var in struct {
		Hits []json.RawMessage `json:"hits"`
	}
	if err := json.Unmarshal(line, &in); err != nil || len(in.Hits) == 0 {
		t.Fatalf("no hits (%v): %s", err, line)
	}
	want = []string{"hit_id", "time", "rule_id", "rule_title", "rule_source", "kind", "severity", "confidence",
		"techniques", "tactics", "eid", "pid", "path", "cmdline", "username"}
	if got := objectKeys(t, in.Hits[0]); !slices.Equal(got, want) {
		t.Errorf("hit fields\n got %q\nwant %q", got, want)
	}
	var h struct {
		Time       any      `json:"time"`
		Techniques []string `json:"techniques"`
	}
	if err := json.Unmarshal(in.Hits[0], &h); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.Time.(float64); !ok || len(h.Techniques) == 0 {
		t.Errorf("hit time is not UNIX seconds, or no techniques: %s", in.Hits[0])
	}
}

// TestScanJSONFields pins the field names (and order) of `quarry scan
// --format json` lines: the ioa_hits columns (telemetry.Hit's JSON names)
// with time in UNIX seconds, then where the event came from.
func TestScanJSONFields(t *testing.T) {
	src := "../../telemetry/importers/testdata/security-datasets/bitsadmin-excerpt.json"
	out, errs, code := quarry(t, t.TempDir(), "", "scan", "--format", "json", "--no-builtin", "--rules", "testdata/rules/bits_custom.yml", src)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	want := []string{"hit_id", "host_identifier", "rule_id", "rule_title", "rule_author", "rule_source", "technique_id",
		"technique_name", "tactic", "severity", "confidence", "description", "recommendations", "eid", "pid", "path",
		"cmdline", "parent_path", "username", "source", "time", "source_file", "record"}
	if got := objectKeys(t, []byte(strings.SplitN(out, "\n", 2)[0])); !slices.Equal(got, want) {
		t.Errorf("scan line fields\n got %q\nwant %q", got, want)
	}
}
