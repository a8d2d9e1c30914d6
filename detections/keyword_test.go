package detections

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/importers"
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
		// The same values handed over with their buffer (ValueArena),
		// apart (each its own string, no arena), and decoded by the
		// importer (which hands its buffer over).
		ev := event(c.values...)
		arena := ""
		for _, x := range ev.Fields.List() {
			arena += x.Value
		}
		ev.Fields.Reset()
		at := 0
		for i, v := range c.values {
			ev.Fields.Append([]string{"Image", "CommandLine", "ParentImage", "Description", "Company"}[i], arena[at:at+len(v)])
			at += len(v)
		}
		ev.Fields.SetValueArena(arena)
		if got := e.Match(ev, nil); got != c.want {
			t.Errorf("values %q in an arena: %d hits, want %d", c.values, got, c.want)
		}
		apart := event(c.values...)
		apart.Fields.Reset()
		for i, v := range c.values {
			apart.Fields.Append([]string{"Image", "CommandLine", "ParentImage", "Description", "Company"}[i], strings.Clone(v))
		}
		if apart.Fields.ValueArena() != "" {
			t.Fatal("hand-built fields have an arena")
		}
		if got := e.Match(apart, nil); got != c.want {
			t.Errorf("values %q apart: %d hits, want %d", c.values, got, c.want)
		}
		imp := importedEvent(t, c.values)
		if imp.Fields.ValueArena() == "" {
			t.Fatal("the importer handed over no value arena")
		}
		if got := e.Match(imp, nil); got != c.want {
			t.Errorf("values %q imported: %d hits, want %d", c.values, got, c.want)
		}
	}
}

// importedEvent decodes a flat Sysmon EventID 1 JSON line holding values
// through the importer.
func importedEvent(t *testing.T, values []string) *telemetry.Event {
	t.Helper()
	m := map[string]any{"EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational", "Hostname": "h", "UtcTime": "2024-01-02 03:04:05.678"}
	for i, v := range values {
		m[[]string{"Image", "CommandLine", "ParentImage", "Description", "Company"}[i]] = v
	}
	line, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ev.json")
	if err := os.WriteFile(path, append(line, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	r, _, err := importers.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ev := &telemetry.Event{}
	if err := importers.NextInto(r, ev); err != nil {
		t.Fatal(err)
	}
	if ev.Category != "process_creation" {
		t.Fatalf("imported category %q", ev.Category)
	}
	return ev
}
