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

// The Sysmon EID 1 and Security 4688 records of one mshta process are one
// process: one row, and each rule's hits on it one hit on that row.
func TestMergedProcessOneHitPerRule(t *testing.T) {
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
	t1 := time.Date(2020, 10, 22, 6, 57, 59, 855e6, time.UTC)
	cmd := `mshta  vbscript:Execute("CreateObject(""Wscript.Shell"").Run ""powershell -noexit -file c:\x.ps1"":close")`
	sy := telemetry.NewEvent(telemetry.KindExec, telemetry.SourceSysmon)
	sy.Time, sy.Host, sy.Category, sy.EventID, sy.Channel = t1, "WS5", "process_creation", 1, "Microsoft-Windows-Sysmon/Operational"
	sy.PID, sy.PPID, sy.ProcessGUID = 10980, 5888, "{39e4a257-2d77-5f91-6b13-000000000700}"
	sy.Path, sy.Cmdline, sy.ParentPath = `C:\Windows\System32\mshta.exe`, cmd, `C:\Windows\System32\cmd.exe`
	sy.Fields = telemetry.FieldsFromMap(map[string]string{"EventID": "1", "Image": sy.Path, "CommandLine": cmd, "ParentImage": sy.ParentPath})
	sec := telemetry.NewEvent(telemetry.KindExec, telemetry.SourceSecurity)
	sec.Time, sec.Host, sec.Category, sec.EventID, sec.Channel = t1.Add(time.Millisecond), "WS5", "process_creation", 4688, "Security"
	sec.PID, sec.PPID = 10980, 5888
	sec.Path, sec.Cmdline, sec.ParentPath = sy.Path, cmd, sy.ParentPath
	sec.Fields = telemetry.FieldsFromMap(map[string]string{"EventID": "4688", "NewProcessName": sy.Path, "CommandLine": cmd, "ParentProcessName": sy.ParentPath})

	// Alone, each record draws hits.
	n := 0
	detections.NewEngine(res.Rules).Match(&sec, func(detections.Hit) { n++ })
	if n == 0 {
		t.Fatal("no rule matches the 4688 record: pick another command line")
	}
	recs, err := pipeline.Detect(context.Background(), st, detections.NewEngine(res.Rules), kb, []telemetry.Event{sec, sy})
	if err != nil {
		t.Fatal(err)
	}
	rules := map[string]bool{}
	for _, r := range recs {
		rules[r.RuleID] = true
	}
	var stored []telemetry.Hit
	st.ScanHits(context.Background(), eventstore.HitFilter{}, func(h *telemetry.Hit) bool {
		stored = append(stored, *h)
		return true
	})
	byRule := map[string]map[string]bool{}
	eids := map[int64]bool{}
	for _, h := range stored {
		if byRule[h.RuleID] == nil {
			byRule[h.RuleID] = map[string]bool{}
		}
		byRule[h.RuleID][h.HitID] = true
		eids[h.EID] = true
	}
	for r, ids := range byRule {
		if len(ids) != 1 {
			t.Errorf("rule %s: %d hits on one process", r, len(ids))
		}
	}
	if len(eids) != 1 || len(byRule) != len(rules) {
		t.Fatalf("hits on %d rows, %d rules (%d in the batch)", len(eids), len(byRule), len(rules))
	}
	if c, _ := st.Count(context.Background()); c != 1 {
		t.Fatalf("%d rows, want 1", c)
	}
}
