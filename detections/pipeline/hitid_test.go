package pipeline_test

import (
	"testing"
	"time"

	"github.com/quarry-sec/quarry/detections/pipeline"
	"github.com/quarry-sec/quarry/telemetry"
)

// TestHitIDStable pins HitID's values: hit ids are stored (ioa_hits,
// the fleet) and a detection run again over the same events must give the
// same ids, so a change of how HitID is computed must not change them.
func TestHitIDStable(t *testing.T) {
	at := time.Date(2025, 10, 24, 1, 2, 3, 456789000, time.UTC)
	sysmon := telemetry.NewEvent(telemetry.KindExec, telemetry.SourceSysmon)
	sysmon.Time, sysmon.Host, sysmon.PID, sysmon.EventID = at, "WS-0387.corp.example", 4242, 1
	sysmon.ProcessGUID, sysmon.RecordID = "{8f2a1c3e-0000-0000-0000-000000000001}", 77
	sysmon.Fields.Append("EventRecordID", "77")
	sysmon.Fields.Append("Image", `C:\Windows\System32\cmd.exe`)
	sysmon.Fields.Append("CommandLine", "cmd.exe /c \"whoami\" é\x00")
	noRecord := sysmon
	noRecord.Fields = telemetry.Fields{}
	noRecord.Fields.Append("Image", `C:\Windows\System32\cmd.exe`)
	keyed := sysmon
	keyed.ProcessKey = "WS-0387.corp.example/4242/1761264002"
	audit := telemetry.NewEvent(telemetry.KindExec, telemetry.SourceAuditd)
	audit.Time, audit.Host, audit.PID, audit.RecordID = at, "lab", 7, 991
	for _, c := range []struct {
		name, rule string
		ev         *telemetry.Event
		want       string
	}{
		{"sysmon with record id", "rule-1", &sysmon, "f2a97647-e96c-552d-9d9e-23231ccffa46"},
		{"other rule", "rule-2", &sysmon, "450bbbf6-5846-5934-a821-ef15b0406dd4"},
		{"no EventRecordID field", "rule-1", &noRecord, "141faadd-dfc6-534e-b26a-39bbe63a70f8"},
		{"process key", "rule-1", &keyed, "e1fadffb-6177-5eed-ae81-419cf8d0a1d6"},
		{"auditd serial", "rule-1", &audit, "07293c70-0dc8-5ff0-8dfd-d85a0cb350aa"},
		{"no fields", "", &telemetry.Event{}, "d1b07e01-0ded-5409-8b95-a0ac34fd82b6"},
	} {
		if got := pipeline.HitID(c.rule, c.ev); got != c.want {
			t.Errorf("%s: HitID = %s, want %s", c.name, got, c.want)
		}
		if got := pipeline.HitIDOf(c.rule, pipeline.AppendEventKey([]byte("reused"), c.ev)[6:]); got != c.want {
			t.Errorf("%s: HitIDOf = %s, want %s", c.name, got, c.want)
		}
	}
}
