package rules

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/telemetry"
)

// ruleTests is one tests/<rule stem>.yml file.
type ruleTests struct {
	Rule     string              `yaml:"rule"`
	Product  string              `yaml:"product"` // "" (windows) or linux
	Positive []map[string]string `yaml:"positive"`
	Negative []map[string]string `yaml:"negative"`
}

// testFields are the Sigma fields a test event may set.
var testFields = map[string]bool{
	"Image": true, "CommandLine": true, "ParentImage": true, "ParentCommandLine": true, "User": true,
	"IntegrityLevel": true, "OriginalFileName": true, "CurrentDirectory": true, "LogonId": true,
}

func readTests(t *testing.T) map[string]*ruleTests {
	t.Helper()
	names, err := fs.Glob(TestsFS, "tests/*.yml")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*ruleTests{}
	for _, name := range names {
		data, err := fs.ReadFile(TestsFS, name)
		if err != nil {
			t.Fatal(err)
		}
		var rt ruleTests
		if err := yaml.UnmarshalWithOptions(data, &rt, yaml.Strict()); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if want := strings.TrimPrefix(name, "tests/"); rt.Rule != want {
			t.Errorf("%s: rule %q, want %q (the tests file is named after its rule)", name, rt.Rule, want)
		}
		if rt.Product != "" && rt.Product != "linux" {
			t.Errorf("%s: product %q, want linux or nothing (windows)", name, rt.Product)
		}
		if len(rt.Positive) == 0 || len(rt.Negative) == 0 {
			t.Errorf("%s: needs at least one positive and one negative event", name)
		}
		for _, evs := range [][]map[string]string{rt.Positive, rt.Negative} {
			for i, ev := range evs {
				if ev["Image"] == "" || ev["CommandLine"] == "" {
					t.Errorf("%s: event %d: Image and CommandLine are required", name, i+1)
				}
				for k := range ev {
					if !testFields[k] {
						t.Errorf("%s: event %d: unknown field %q", name, i+1, k)
					}
				}
			}
		}
		out[rt.Rule] = &rt
	}
	return out
}

// testEvent builds the event a collector would deliver: a Sysmon EventID 1
// for Windows (EventData under Sigma names, typed fields filled as the
// importer does), a live exec event with typed fields for Linux.
func testEvent(product string, f map[string]string) *telemetry.Event {
	var ev telemetry.Event
	if product == "linux" {
		ev = telemetry.NewEvent(telemetry.KindExec, telemetry.SourceEBPF)
	} else {
		ev = telemetry.NewEvent(telemetry.KindExec, telemetry.SourceSysmon)
		ev.EventID = 1
		ev.Channel = "Microsoft-Windows-Sysmon/Operational"
		ev.Fields = telemetry.FieldsFromMap(map[string]string{})
		for k, v := range f {
			ev.Fields.Set(k, v)
		}
	}
	ev.Category = "process_creation"
	ev.Path, ev.Cmdline = f["Image"], f["CommandLine"]
	ev.ParentPath, ev.ParentCmdline = f["ParentImage"], f["ParentCommandLine"]
	ev.Username, ev.Cwd, ev.LogonID = f["User"], f["CurrentDirectory"], f["LogonId"]
	ev.IntegrityLevel, ev.OriginalFileName = f["IntegrityLevel"], f["OriginalFileName"]
	return &ev
}

// hitsOf returns the file names of the rules that match ev.
func hitsOf(eng *detections.Engine, ev *telemetry.Event) map[string]bool {
	got := map[string]bool{}
	eng.Match(ev, func(h detections.Hit) { got[path.Base(h.Rule.Path)] = true })
	return got
}

// TestRuleEvents runs every rule's positive and negative events through the
// whole pack: each positive must hit its rule, no negative may.
func TestRuleEvents(t *testing.T) {
	rules := loadPack(t)
	tests := readTests(t)
	eng := detections.NewEngine(rules)
	cross := map[string][]string{}
	for _, r := range rules {
		name := path.Base(r.Path)
		rt, ok := tests[name]
		if !ok {
			t.Errorf("%s: no tests/%s", name, name)
			continue
		}
		delete(tests, name)
		if (rt.Product == "linux") != (r.Logsource.Product == "linux") {
			t.Errorf("tests/%s: product %q does not match the rule's %q", name, rt.Product, r.Logsource.Product)
		}
		for i, f := range rt.Positive {
			got := hitsOf(eng, testEvent(rt.Product, f))
			if !got[name] {
				t.Errorf("%s: positive %d does not match: %s", name, i+1, f["CommandLine"])
			}
			for o := range got {
				if o != name {
					cross[name] = append(cross[name], o)
				}
			}
		}
		for i, f := range rt.Negative {
			if hitsOf(eng, testEvent(rt.Product, f))[name] {
				t.Errorf("%s: negative %d matches: %s", name, i+1, f["CommandLine"])
			}
		}
	}
	for name := range tests {
		t.Errorf("tests/%s: no such rule", name)
	}
	var lines []string
	for k, v := range cross {
		lines = append(lines, fmt.Sprintf("  %s positives also hit %v", k, v))
	}
	sort.Strings(lines)
	if len(lines) > 0 {
		t.Logf("overlapping rules (expected where a step has several angles):\n%s", strings.Join(lines, "\n"))
	}
}
