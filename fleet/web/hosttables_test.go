package web_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/quarry-sec/quarry/fleet/server"
)

// osqueryPost posts a JSON body to the fleet's osquery API as osqueryd
// does and decodes the answer.
func osqueryPost(t *testing.T, f *fleet, path string, body any) map[string]any {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(f.srv.URL+"/api/v1/osquery/"+path, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s, %v", path, resp.Status, err)
	}
	return out
}

// An osquery host answers the schema probe; the hunt page's schema browser
// then lists its tables after Quarry's, each with its columns and host
// count, and leaves out those Quarry's catalog already lists.
func TestHuntPageListsHostTables(t *testing.T) {
	f := newFleet(t)
	enrolled := osqueryPost(t, f, "enroll", map[string]any{"enroll_secret": f.secret, "host_identifier": "osq-1",
		"host_details": map[string]any{"os_version": map[string]any{"platform": "ubuntu", "version": "24.04"},
			"osquery_info": map[string]any{"version": "5.12.1"}, "system_info": map[string]any{"hostname": "osq-1"}}})
	key, _ := enrolled["node_key"].(string)
	if key == "" {
		t.Fatalf("enroll: %v", enrolled)
	}
	rd := osqueryPost(t, f, "distributed/read", map[string]any{"node_key": key})
	probe, _ := rd["queries"].(map[string]any)[server.SchemaProbeID].(string)
	if probe == "" {
		t.Fatalf("no schema probe in the first distributed read: %v", rd)
	}
	osqueryPost(t, f, "distributed/write", map[string]any{"node_key": key,
		"queries": map[string]any{server.SchemaProbeID: []map[string]string{
			{"name": "processes", "sql": "CREATE VIRTUAL TABLE temp.processes USING processes(`pid` BIGINT, `name` TEXT, `cmdline` TEXT, `pid_with_namespace` INTEGER HIDDEN)"},
			{"name": "listening_ports", "sql": "CREATE VIRTUAL TABLE temp.listening_ports USING listening_ports(`pid` INTEGER, `port` INTEGER)"},
			{"name": "process_events", "sql": "CREATE VIRTUAL TABLE temp.process_events USING process_events(`pid` BIGINT, `osquery_only_column` TEXT)"},
		}},
		"statuses": map[string]any{server.SchemaProbeID: 0}})

	c := client(t)
	signIn(t, c, f.srv.URL, f.token)
	resp, body := get(t, c, f.srv.URL+"/hunt")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/hunt: %s", resp.Status)
	}
	start := strings.Index(body, `id="schema"`)
	if start < 0 {
		t.Fatal("no schema browser on the hunt page")
	}
	aside := body[start:]
	split := strings.Index(aside, `id="host-tables"`)
	if split < 0 {
		t.Fatal("no host tables section in the schema browser")
	}
	quarryPart, hostPart := aside[:split], aside[split:]
	if !strings.Contains(quarryPart, `data-name="attack_techniques"`) {
		t.Error("Quarry's tables are not listed before the host tables")
	}
	table := regexp.MustCompile(`(?s)<details class="table host-table" data-name="([^"]+)">(.*?)</details>`)
	got := map[string]string{}
	for _, m := range table.FindAllStringSubmatch(hostPart, -1) {
		got[m[1]] = m[2]
	}
	p, ok := got["processes"]
	if !ok {
		t.Fatalf("processes not listed among the host tables: %v", got)
	}
	for _, want := range []string{`data-insert="pid"`, `data-insert="name"`, `data-insert="cmdline"`, "BIGINT",
		`data-insert="pid_with_namespace"`, "INTEGER · hidden", "1 host · linux"} {
		if !strings.Contains(p, want) {
			t.Errorf("processes lacks %q: %s", want, p)
		}
	}
	if _, ok := got["listening_ports"]; !ok {
		t.Errorf("listening_ports not listed: %v", got)
	}
	if _, ok := got["process_events"]; ok {
		t.Error("process_events listed twice: Quarry's catalog has it")
	}
	if strings.Count(aside, `data-name="process_events"`) != 1 {
		t.Errorf("process_events appears %d times in the browser", strings.Count(aside, `data-name="process_events"`))
	}
}
