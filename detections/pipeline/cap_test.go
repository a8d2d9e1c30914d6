package pipeline_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/detections/pipeline"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

const noisyRule = `title: Connection by a test program
id: 5b0d7c1e-3f8a-4e52-9a61-0c2f4d8e7b13
status: test
logsource:
  product: linux
  category: network_connection
detection:
  selection:
    Image|endswith: '/noisy'
  condition: selection
level: high
tags:
  - attack.command-and-control
  - attack.t1071
`

// connects returns n connection events of the process pid.
func connects(pid int64, n int, t0 time.Time) []telemetry.Event {
	evs := make([]telemetry.Event, n)
	for i := range evs {
		e := telemetry.NewEvent(telemetry.KindOther, telemetry.SourceEBPF)
		e.Time, e.Host, e.PID, e.Path = t0.Add(time.Duration(i)*time.Millisecond), "lab", pid, "/opt/noisy"
		e.Category = "network_connection"
		e.Fields.Set("Image", "/opt/noisy")
		e.Fields.Set("DestinationIp", "198.51.100.9")
		e.Fields.Set("DestinationPort", "443")
		e.Fields.Set("Initiated", "true")
		evs[i] = e
	}
	return evs
}

// One rule raises at most DefaultHitsPerProcess hits on one process; its
// further matches there tag their events instead, and another process
// has its own count. Without the cap every match is a hit.
func TestHitsPerProcessCap(t *testing.T) {
	kb, err := attack.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	res, err := detections.LoadBytes("noisy.yml", []byte(noisyRule), detections.Options{Source: detections.SourceBuiltin, KB: kb})
	if err != nil || len(res.Errors) > 0 || len(res.Rules) != 1 {
		t.Fatalf("rule: %v %v", err, res.Errors)
	}
	for _, tc := range []struct {
		cap              int
		hits, capped     int
		taggedOfNoisyPID int
	}{
		{0, pipeline.DefaultHitsPerProcess + 10, 250 - pipeline.DefaultHitsPerProcess, 250 - pipeline.DefaultHitsPerProcess},
		{-1, 260, 0, 0},
	} {
		st, err := eventstore.Open(filepath.Join(t.TempDir(), "events.db"))
		if err != nil {
			t.Fatal(err)
		}
		d, _ := pipeline.NewDetector(res.Rules, kb)
		d.SetHitsPerProcess(tc.cap)
		t0 := time.Date(2026, 12, 6, 4, 0, 0, 0, time.UTC)
		noisy := connects(500, 250, t0)
		for start := 0; start < len(noisy); start += 100 { // the cap holds across batches
			batch := noisy[start:min(start+100, len(noisy))]
			if start == 200 {
				batch = append(batch, connects(501, 10, t0.Add(time.Second))...)
			}
			if _, err := d.Store(context.Background(), st, batch); err != nil {
				t.Fatal(err)
			}
		}
		byPID := map[int64]int{}
		st.ScanHits(context.Background(), eventstore.HitFilter{}, func(h *telemetry.Hit) bool {
			byPID[h.PID]++
			return true
		})
		if byPID[500]+byPID[501] != tc.hits || byPID[501] != 10 || d.Capped() != tc.capped {
			t.Errorf("cap %d: hits by pid %v, capped %d; want %d hits (10 of pid 501), %d capped", tc.cap, byPID, d.Capped(), tc.hits, tc.capped)
		}
		tagged := 0
		st.Scan(context.Background(), eventstore.Filter{}, func(e *eventstore.StoredEvent) bool {
			if e.PID == 500 && e.Techniques == "T1071" {
				tagged++
			}
			return true
		})
		if tagged != tc.taggedOfNoisyPID {
			t.Errorf("cap %d: %d events of pid 500 tagged T1071, want %d", tc.cap, tagged, tc.taggedOfNoisyPID)
		}
		st.Close()
	}
}
