package pipeline_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/detections/pipeline"
	"github.com/quarry-sec/quarry/detections/ruleset"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/store"
)

// Incidents update as hits arrive: the first hit makes an incident, a
// later hit under the same script joins it and the id stays.
func TestPipelineUpdatesIncidents(t *testing.T) {
	kb, err := attack.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	res, err := ruleset.Load(ruleset.Config{Builtin: true, KB: kb})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p := pipeline.New(st, detections.NewEngine(res.Rules), pipeline.Options{KB: kb, FlushInterval: time.Hour})
	now := time.Now().UTC()
	ev := func(at time.Duration, pid, ppid int64, path, cmdline string) telemetry.Event {
		e := telemetry.NewEvent(telemetry.KindExec, telemetry.SourceEBPF)
		e.Host, e.Time, e.StartTime = "lab", now.Add(at), now.Add(at)
		e.PID, e.PPID, e.Path, e.Cmdline = pid, ppid, path, cmdline
		return e
	}
	incidents := func() []store.IncidentRecord {
		var out []store.IncidentRecord
		if err := st.ScanIncidents(context.Background(), store.IncidentFilter{}, func(r *store.IncidentRecord) bool {
			out = append(out, *r)
			return true
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	p.Add(ev(0, 100, 1, "/usr/bin/bash", "bash /tmp/stage.sh"))
	p.Add(ev(time.Second, 200, 100, "/usr/bin/sh", "sh -c echo aWQ= | base64 -d | sh"))
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	first := incidents()
	if len(first) != 1 || first[0].HitCount != 1 {
		t.Fatalf("after the decode hit: %+v", first)
	}
	p.Add(ev(2*time.Second, 201, 100, "/usr/bin/crontab", "/usr/bin/crontab /tmp/.job"))
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	second := incidents()
	if len(second) != 1 || second[0].HitCount != 2 || second[0].IncidentID != first[0].IncidentID {
		t.Fatalf("after the crontab hit: %+v (before: %+v)", second, first)
	}
}
