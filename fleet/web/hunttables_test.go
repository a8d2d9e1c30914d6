package web_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// The hunt page's schema browser lists the activity tables (catalog.Schemas)
// with their columns, and process_tree's activity column, with no host
// having reported anything.
func TestHuntPageListsActivityTables(t *testing.T) {
	f := newFleet(t)
	c := client(t)
	signIn(t, c, f.srv.URL, f.token)
	resp, body := get(t, c, f.srv.URL+"/hunt")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/hunt: %s", resp.Status)
	}
	table := regexp.MustCompile(`(?s)<details class="table" data-name="([^"]+)">(.*?)</details>`)
	got := map[string]string{}
	for _, m := range table.FindAllStringSubmatch(body, -1) {
		got[m[1]] = m[2]
	}
	for name, col := range map[string]string{
		"socket_events": "remote_address", "file_events": "target_path", "registry_events": "target_object",
		"dns_lookup_events": "process_key", "image_load_events": "image_loaded", "process_access_events": "granted_access",
		"remote_thread_events": "process_key", "events": "fields", "process_activity": "summary",
		"process_tree": "activity", "quarry_socket_events": "remote_address",
	} {
		cols, ok := got[name]
		if !ok {
			t.Errorf("schema browser lacks %s", name)
			continue
		}
		if !strings.Contains(cols, `data-insert="`+col+`"`) {
			t.Errorf("schema browser: %s lacks column %s", name, col)
		}
	}
}
