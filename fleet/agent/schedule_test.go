package agent

import (
	"encoding/json"
	"testing"

	"github.com/quarry-sec/quarry/detections/packs"
	"github.com/quarry-sec/quarry/fleet/osqwire"
)

func TestJobsFromScheduleAndPacks(t *testing.T) {
	pack, err := json.Marshal(packs.Detection())
	if err != nil {
		t.Fatal(err)
	}
	cfg := osqwire.ConfigResponse{
		Schedule: map[string]osqwire.ScheduledQuery{"uptime": {Query: "SELECT 1", Interval: 10}, "no_interval": {Query: "SELECT 1"}},
		Packs: map[string]json.RawMessage{
			packs.Name: pack,
			"win":      json.RawMessage(`{"platform": "windows", "queries": {"q": {"query": "SELECT 1", "interval": 5}}}`),
			"remote":   json.RawMessage(`"/etc/osquery/packs/remote.conf"`),
		},
	}
	js := jobs(cfg, "linux", "_")
	names := map[string]job{}
	for _, j := range js {
		names[j.Name] = j
	}
	if len(js) != 1+len(packs.Detection().Queries) {
		t.Errorf("jobs = %v", js)
	}
	hits, ok := names["pack_quarry-detections_"+packs.QueryHits]
	if !ok || hits.Interval != 60 || hits.Snapshot || hits.Removed {
		t.Errorf("hits job = %+v, %v", hits, ok)
	}
	if cov := names["pack_quarry-detections_"+packs.QueryTechniqueCoverage]; !cov.Snapshot {
		t.Errorf("coverage job = %+v", cov)
	}
	if _, ok := names["uptime"]; !ok {
		t.Error("schedule query missing")
	}
	if js := jobs(cfg, "linux", "/"); js[0].Name != "pack/quarry-detections/"+packs.QueryHighSeverity {
		t.Errorf("with / delimiter: %s", js[0].Name)
	}
}
