package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/importers"
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
				if !strings.HasPrefix(rt.Rule, "proc_creation_") {
					if len(ev) == 0 {
						t.Errorf("%s: event %d is empty", name, i+1)
					}
					continue // other categories: the fields of their source (Sysmon, Security, eBPF)
				}
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

// sysmonEventIDs is the Sysmon event id a test event of a category gets
// unless it sets EventID itself.
var sysmonEventIDs = map[string]int{
	"network_connection": 3, "image_load": 7, "driver_load": 6, "create_remote_thread": 8,
	"process_access": 10, "file_event": 11, "registry_add": 12, "registry_delete": 12,
	"registry_set": 13, "registry_event": 13, "create_stream_hash": 15, "pipe_created": 17,
	"wmi_event": 20, "dns_query": 22, "file_delete": 23,
}

// serviceChannels is the channel a test event of a service rule is written
// to: the channel as Windows names it, which the importer keeps and the
// engine maps back to the service (detections' channelServices), so a rule
// whose service the engine does not give that channel's events cannot pass
// its positives. TestServiceChannels checks the mapping on its own.
var serviceChannels = map[string]string{
	"security":                             "Security",
	"system":                               "System",
	"windefend":                            "Microsoft-Windows-Windows Defender/Operational",
	"bits-client":                          "Microsoft-Windows-Bits-Client/Operational",
	"taskscheduler":                        "Microsoft-Windows-TaskScheduler/Operational",
	"firewall-as":                          "Microsoft-Windows-Windows Firewall With Advanced Security/Firewall",
	"applocker":                            "Microsoft-Windows-AppLocker/EXE and DLL",
	"codeintegrity-operational":            "Microsoft-Windows-CodeIntegrity/Operational",
	"wmi":                                  "Microsoft-Windows-WMI-Activity/Operational",
	"powershell-classic":                   "Windows PowerShell",
	"ntlm":                                 "Microsoft-Windows-NTLM/Operational",
	"dns-server":                           "DNS Server",
	"msexchange-management":                "MSExchange Management",
	"printservice-admin":                   "Microsoft-Windows-PrintService/Admin",
	"printservice-operational":             "Microsoft-Windows-PrintService/Operational",
	"openssh":                              "OpenSSH/Operational",
	"smbclient-security":                   "Microsoft-Windows-SmbClient/Security",
	"terminalservices-localsessionmanager": "Microsoft-Windows-TerminalServices-LocalSessionManager/Operational",
	"appxdeployment-server":                "Microsoft-Windows-AppXDeploymentServer/Operational",
	"security-mitigations":                 "Microsoft-Windows-Security-Mitigations/KernelMode",
	"shell-core":                           "Microsoft-Windows-Shell-Core/Operational",
}

// ruleEvents builds the events a rule's test fields stand for, as the
// collectors and importers deliver them: process creation as before
// (testEvent); other Windows events are written as the flattened JSON lines
// of /work/shared/datasets (EventData at the top level beside EventID and
// Channel) and read back with telemetry/importers, so a rule is tested on
// what the importer really makes of them; Linux events are live eBPF events
// (Sigma field names in Fields, Image in Path).
func ruleEvents(t *testing.T, r *detections.Rule, product string, evs []map[string]string) []*telemetry.Event {
	t.Helper()
	ls := r.Logsource
	if ls.Category == "process_creation" {
		out := make([]*telemetry.Event, len(evs))
		for i, f := range evs {
			out[i] = testEvent(product, f)
		}
		return out
	}
	if product == "linux" {
		out := make([]*telemetry.Event, len(evs))
		for i, f := range evs {
			ev := telemetry.NewEvent(telemetry.KindOther, telemetry.SourceEBPF)
			ev.Category = ls.Category
			ev.Fields = telemetry.FieldsFromMap(f)
			ev.Path = f["Image"]
			if ev.Path == "" {
				ev.Path = f["SourceImage"]
			}
			ev.Username = f["User"]
			out[i] = &ev
		}
		return out
	}
	return ruleEventsOn(t, r, "", evs)
}

// ruleEventsOn writes Windows test events of a non-process rule as JSON
// lines on channel (by the rule's log source when "") and imports them.
func ruleEventsOn(t *testing.T, r *detections.Rule, channel string, evs []map[string]string) []*telemetry.Event {
	t.Helper()
	ls := r.Logsource
	var lines []byte
	for i, f := range evs {
		obj := map[string]any{"Hostname": "WKS01.example.org", "TimeCreated": "2026-11-30T10:00:00.000Z"}
		for k, v := range f {
			obj[k] = v
		}
		switch {
		case ls.Service != "":
			ch, ok := serviceChannels[ls.Service]
			if !ok {
				t.Fatalf("%s: no test channel for service %q (serviceChannels)", r.Path, ls.Service)
			}
			obj["Channel"] = ch
		case ls.Category == "ps_script" || ls.Category == "ps_module":
			obj["Channel"] = "Microsoft-Windows-PowerShell/Operational"
			obj["EventID"] = map[string]int{"ps_script": 4104, "ps_module": 4103}[ls.Category]
		default:
			obj["Channel"] = "Microsoft-Windows-Sysmon/Operational"
			if _, ok := f["EventID"]; !ok {
				obj["EventID"] = sysmonEventIDs[ls.Category]
			}
		}
		if channel != "" {
			obj["Channel"] = channel
		}
		if id, ok := f["EventID"]; ok {
			n, err := strconv.Atoi(id)
			if err != nil {
				t.Fatalf("%s: event %d: EventID %q", r.Path, i+1, id)
			}
			obj["EventID"] = n
		}
		if _, ok := obj["EventID"]; !ok {
			t.Fatalf("%s: event %d: no EventID for a %s/%s rule", r.Path, i+1, ls.Service, ls.Category)
		}
		b, err := json.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(append(lines, b...), '\n')
	}
	file := filepath.Join(t.TempDir(), "events.json")
	if err := os.WriteFile(file, lines, 0o600); err != nil {
		t.Fatal(err)
	}
	rd, _, err := importers.Open(file)
	if err != nil {
		t.Fatalf("%s: importing its test events: %v", r.Path, err)
	}
	defer rd.Close()
	var out []*telemetry.Event
	for {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: importing its test events: %v", r.Path, err)
		}
		out = append(out, &ev)
	}
	if len(out) != len(evs) {
		t.Fatalf("%s: %d test events imported as %d", r.Path, len(evs), len(out))
	}
	return out
}

// describe names a test event in a failure message.
func describe(f map[string]string) string {
	for _, k := range []string{"CommandLine", "TargetFilename", "TargetObject", "ScriptBlockText", "Payload",
		"QueryName", "DestinationIp", "ImageLoaded", "TargetImage", "PipeName", "ImagePath", "ServiceFileName",
		"TaskName", "RelativeTargetName", "Destination", "Query", "EventID"} {
		if v := f[k]; v != "" {
			if len(v) > 120 {
				v = v[:120] + "…"
			}
			return k + "=" + v
		}
	}
	return fmt.Sprint(f)
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
		positives := ruleEvents(t, r, rt.Product, rt.Positive)
		for i, ev := range positives {
			got := hitsOf(eng, ev)
			if !got[name] {
				t.Errorf("%s: positive %d does not match: %s", name, i+1, describe(rt.Positive[i]))
			}
			for o := range got {
				if o != name {
					cross[name] = append(cross[name], o)
				}
			}
		}
		if r.Sigma != nil && len(r.Sigma.SearchTags) > 0 {
			checkSearchTags(t, eng, r, positives)
		}
		for i, ev := range ruleEvents(t, r, rt.Product, rt.Negative) {
			if hitsOf(eng, ev)[name] {
				t.Errorf("%s: negative %d matches: %s", name, i+1, describe(rt.Negative[i]))
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

// checkSearchTags fails unless a rule with search_tags reports each of its
// techniques on at least one of its positives and none reports them all
// (the positives must show each branch on its own).
func checkSearchTags(t *testing.T, eng *detections.Engine, r *detections.Rule, positives []*telemetry.Event) {
	t.Helper()
	name := path.Base(r.Path)
	seen := map[string]bool{}
	narrowed := false
	for _, ev := range positives {
		eng.Match(ev, func(h detections.Hit) {
			if h.Rule != r {
				return
			}
			if len(h.Techniques) < len(r.Techniques) {
				narrowed = true
			}
			for _, tc := range h.Techniques {
				seen[tc.ID] = true
			}
		})
	}
	for _, tc := range r.Techniques {
		if !seen[tc.ID] {
			t.Errorf("%s: no positive reports %s (search_tags): add a positive for that branch", name, tc.ID)
		}
	}
	if !narrowed {
		t.Errorf("%s: every positive reports all of the rule's techniques: search_tags never narrow them", name)
	}
}

// TestServiceChannels checks that every service a rule prefix names has a
// test channel, and that the engine gives an event imported from each test
// channel its service (and an event of another channel not): a probe rule
// of the service fires on the first and not on the second.
func TestServiceChannels(t *testing.T) {
	for prefix, ls := range filePrefixes {
		if _, ok := serviceChannels[ls.service]; ls.service != "" && !ok {
			t.Errorf("prefix %s: service %s has no channel in serviceChannels", prefix, ls.service)
		}
	}
	for service, ch := range serviceChannels {
		src := fmt.Sprintf("title: t\nid: 00000000-0000-4000-8000-000000000000\nlogsource:\n  product: windows\n  service: %s\n"+
			"detection:\n  selection:\n    EventID: 4242\n  condition: selection\nlevel: low\n", service)
		res, err := detections.LoadBytes("probe_"+service+".yml", []byte(src), detections.Options{Source: detections.SourceBuiltin})
		if err != nil || len(res.Rules) != 1 {
			t.Fatalf("service %s: loading a probe rule: %v %v", service, err, res)
		}
		eng := detections.NewEngine(res.Rules)
		for _, c := range []struct {
			channel string
			want    bool
		}{{ch, true}, {"Application", false}} {
			evs := ruleEventsOn(t, res.Rules[0], c.channel, []map[string]string{{"EventID": "4242", "Probe": "x"}})
			if got := len(hitsOf(eng, evs[0])) > 0; got != c.want {
				t.Errorf("service %s: an event of channel %q hit the probe rule: %v, want %v", service, c.channel, got, c.want)
			}
		}
	}
}
