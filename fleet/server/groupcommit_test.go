package server

import (
	"fmt"
	"sync"
	"testing"

	"github.com/quarry-sec/quarry/detections/packs"
)

// TestConcurrentLogsGroupCommit: many hosts logging at once (their requests
// share commits) all get 200 and every hit is stored once.
func TestConcurrentLogsGroupCommit(t *testing.T) {
	f := newFixture(t, openSQLite(t))
	const hosts, logsEach = 20, 10
	keys := make([]string, hosts)
	for i := range keys {
		keys[i] = f.enroll(fmt.Sprintf("host-%d", i), "ubuntu")
	}
	now := f.clock.Now()
	var wg sync.WaitGroup
	errs := make(chan error, hosts*logsEach)
	for i, key := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < logsEach; j++ {
				row := hitRow(fmt.Sprintf("hit-%d-%d", i, j), "T1059.004", "execution", "high", now)
				body := map[string]any{"node_key": key, "log_type": "result", "data": []any{map[string]any{
					"name": "pack_" + packs.Name + "_" + packs.QueryHits, "unixTime": now.Unix(), "columns": row, "action": "added"}}}
				if code, _ := f.osquery("log", body); code != 200 {
					errs <- fmt.Errorf("host %d log %d: status %d", i, j, code)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	_, n, err := f.st.Detections(t.Context(), storeAll())
	if err != nil {
		t.Fatal(err)
	}
	if n != hosts*logsEach {
		t.Fatalf("%d detections stored, want %d", n, hosts*logsEach)
	}
}
