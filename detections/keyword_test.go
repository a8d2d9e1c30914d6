package detections

import (
	"testing"

	"github.com/quarry-sec/quarry/telemetry"
)

// TestKeywordOverContiguousValues checks keyword searches on events whose
// values share one buffer, as importers decode them: the engine first
// looks for the keyword in the whole buffer, then in each value. A keyword
// split across two neighbouring values must not match; one inside any
// value (in any case) must.
func TestKeywordOverContiguousValues(t *testing.T) {
	rule := []byte(`title: NotPetya-like keyword
id: 6f1e0f0a-1a2b-4c3d-8e9f-0a1b2c3d4e5f
logsource:
    category: process_creation
    product: windows
detection:
    keywords:
        - '\perfc.dat'
    condition: keywords
level: high
`)
	res, err := LoadBytes("kw.yml", rule, Options{})
	if err != nil || len(res.Rules) != 1 {
		t.Fatalf("load: %v %v", err, res.Errors)
	}
	e := NewEngine(res.Rules)
	event := func(values ...string) *telemetry.Event {
		buf := ""
		for _, v := range values {
			buf += v
		}
		ev := telemetry.NewEvent(telemetry.KindExec, telemetry.SourceSysmon)
		ev.Channel, ev.EventID, ev.Category = "Microsoft-Windows-Sysmon/Operational", 1, "process_creation"
		ev.Fields = telemetry.FieldsFromMap(map[string]string{})
		names := []string{"Image", "CommandLine", "ParentImage", "Description", "Company"}
		at := 0
		for i, v := range values {
			ev.Fields.Set(names[i], buf[at:at+len(v)])
			at += len(v)
		}
		return &ev
	}
	for _, c := range []struct {
		values []string
		want   int
	}{
		{[]string{`C:\Windows\rundll32.exe`, `rundll32.exe C:\Windows\PERFC.DAT,#1`, `C:\x.exe`}, 1},
		{[]string{`C:\Windows\rundll32.exe`, `rundll32.exe C:\Windows\perf`, `c.dat`}, 0},
		{[]string{`C:\Windows\rundll32.exe`, `a.b.c.d`, `\perfc.dat`}, 1},
		{[]string{`\perfc.dat`}, 1},
		{[]string{`é\PerfC.dat`, `x`}, 1},
		{[]string{`\perfc.da`, `t`}, 0},
		{[]string{`nothing.here`, `at.all`}, 0},
	} {
		if got := e.Match(event(c.values...), nil); got != c.want {
			t.Errorf("values %q: %d hits, want %d", c.values, got, c.want)
		}
	}
}
