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
	"github.com/quarry-sec/quarry/telemetry/eventstore"
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
	st, err := eventstore.Open(filepath.Join(t.TempDir(), "events.db"))
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
	incidents := func() []eventstore.IncidentRecord {
		var out []eventstore.IncidentRecord
		if err := st.ScanIncidents(context.Background(), eventstore.IncidentFilter{}, func(r *eventstore.IncidentRecord) bool {
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

// With correlation rules, a correlation hit is stored live like any other
// and joins the incident of the hits it correlates.
func TestPipelineCorrelation(t *testing.T) {
	kb, err := attack.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	res, err := ruleset.Load(ruleset.Config{Builtin: true, KB: kb})
	if err != nil {
		t.Fatal(err)
	}
	corr, errs := detections.NewCorrelator(res.Rules)
	if len(errs) > 0 || corr.Len() == 0 {
		t.Fatalf("builtin correlations: %d, %v", corr.Len(), errs)
	}
	st, err := eventstore.Open(filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p := pipeline.New(st, detections.NewEngine(res.Rules), pipeline.Options{KB: kb, FlushInterval: time.Hour, Correlation: corr})
	now := time.Now().UTC()
	add := func(at time.Duration, pid, ppid int64, path, cmdline string) {
		e := telemetry.NewEvent(telemetry.KindExec, telemetry.SourceEBPF)
		e.Host, e.Time, e.StartTime = "lab", now.Add(at), now.Add(at)
		e.PID, e.PPID, e.Path, e.Cmdline = pid, ppid, path, cmdline
		p.Add(e)
	}
	add(0, 100, 1, "/usr/bin/bash", "bash /tmp/stage.sh")
	add(time.Second, 200, 100, "/usr/bin/sh", "sh -c echo aWQ= | base64 -d | sh")
	add(2*time.Second, 201, 100, "/usr/bin/crontab", "/usr/bin/crontab /tmp/.job")
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	var corrHit string
	st.ScanHits(context.Background(), eventstore.HitFilter{}, func(h *telemetry.Hit) bool {
		if h.RuleSource == "correlation" {
			corrHit = h.HitID
		}
		return true
	})
	if corrHit == "" {
		t.Fatal("no correlation hit stored")
	}
	var in []eventstore.IncidentHitPair
	st.ScanIncidentHits(context.Background(), nil, nil, func(p eventstore.IncidentHitPair) bool {
		in = append(in, p)
		return true
	})
	if len(in) != 3 || in[0].IncidentID != in[2].IncidentID {
		t.Fatalf("want one incident of the decode, crontab and correlation hits: %+v", in)
	}
	if s := p.Stats(); s.Hits != 3 || s.Errors != 0 {
		t.Errorf("stats %+v", s)
	}
}
