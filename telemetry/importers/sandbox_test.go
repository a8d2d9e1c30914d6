package importers

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/telemetry"
)

const (
	capeReport   = "testdata/sandbox/cape_report.json"
	cuckooReport = "testdata/sandbox/cuckoo_report.json"
)

// readReport reads a sandbox report whole: its events, and its run once
// they are read.
func readReport(t *testing.T, path string, opts ...Option) ([]telemetry.Event, *SandboxReport) {
	t.Helper()
	r, f, err := Open(path, opts...)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	defer r.Close()
	if f != FormatSandboxReport {
		t.Fatalf("format %q, want %q", f, FormatSandboxReport)
	}
	if SandboxReportOf(r) != nil {
		t.Fatal("the run is there before the events are read")
	}
	evs, errs := readAll(t, r)
	if len(errs) > 0 {
		t.Fatalf("record errors: %v", errs)
	}
	rep := SandboxReportOf(r)
	if rep == nil {
		t.Fatal("no run after the events")
	}
	return evs, rep
}

// find returns the events of a category whose field has the value.
func find(evs []telemetry.Event, category, field, value string) []telemetry.Event {
	var out []telemetry.Event
	for _, e := range evs {
		if e.Category == category && (field == "" || e.Field(field) == value) {
			out = append(out, e)
		}
	}
	return out
}

func one(t *testing.T, evs []telemetry.Event, category, field, value string) telemetry.Event {
	t.Helper()
	got := find(evs, category, field, value)
	if len(got) != 1 {
		t.Fatalf("%d %s events with %s=%q, want 1", len(got), category, field, value)
	}
	return got[0]
}

// TestSandboxCAPEReport: a CAPE report (written to CAPE's documented
// layout) gives the process tree with its linkage, one event per API
// behaviour under Sysmon's names (failed calls and reads left out, a file
// written in several calls once), the capture's flows and the dropped
// files no call explains, and the run with its verdict and techniques.
func TestSandboxCAPEReport(t *testing.T) {
	evs, rep := readReport(t, capeReport)
	for _, e := range evs {
		if e.Source != telemetry.SourceSandbox || e.RunID != "cape-4711" || e.Host != "win10-cape-01" {
			t.Fatalf("event %s: source %q run %q host %q", e.Category, e.Source, e.RunID, e.Host)
		}
	}
	// The tree: invoice.exe → cmd.exe → whoami.exe (the last only in the
	// process tree).
	starts := find(evs, "process_creation", "", "")
	if len(starts) != 3 {
		t.Fatalf("%d process starts, want 3", len(starts))
	}
	inv := one(t, evs, "process_creation", "ProcessId", "2340")
	cmd := one(t, evs, "process_creation", "ProcessId", "3012")
	who := one(t, evs, "process_creation", "ProcessId", "3100")
	if inv.Kind != telemetry.KindExec || inv.ProcessGUID != "cape-4711/2340" || inv.PPID != 1188 || inv.ParentGUID != "" ||
		!strings.HasPrefix(inv.Hashes, "SHA256=CA978112") || inv.Username != `DESKTOP-CAPE01\analyst` ||
		!inv.Time.Equal(time.Date(2026, 11, 30, 10, 0, 5, 120e6, time.UTC)) {
		t.Errorf("sample's start: %+v", inv)
	}
	if cmd.ParentGUID != inv.ProcessGUID || cmd.ParentPath != inv.Path || cmd.Cmdline != "cmd.exe /c whoami /all" ||
		cmd.Field("ParentImage") != inv.Path {
		t.Errorf("cmd.exe's start: parent %q %q, cmdline %q", cmd.ParentGUID, cmd.ParentPath, cmd.Cmdline)
	}
	if who.ParentGUID != cmd.ProcessGUID || who.Cmdline != "whoami /all" {
		t.Errorf("whoami.exe's start: parent %q, cmdline %q", who.ParentGUID, who.Cmdline)
	}

	lnk := `C:\Users\analyst\AppData\Roaming\Microsoft\Windows\Start Menu\Programs\Startup\update.lnk`
	if e := one(t, evs, "file_event", "TargetFilename", lnk); e.ProcessGUID != inv.ProcessGUID || e.Field("Image") != inv.Path {
		t.Errorf("startup file's process: %q %q", e.ProcessGUID, e.Field("Image"))
	}
	if got := find(evs, "file_event", "TargetFilename", `C:\Windows\System32\drivers\etc\hosts`); len(got) != 0 {
		t.Errorf("a file opened for reading is a file_event")
	}
	dll := one(t, evs, "file_event", "TargetFilename", `C:\ProgramData\svc\payload.dll`)
	if dll.ProcessGUID != cmd.ProcessGUID || !strings.Contains(dll.Field("Hashes"), "SHA256=BA7816BF") {
		t.Errorf("dropped dll: by %q, hashes %q", dll.ProcessGUID, dll.Field("Hashes"))
	}
	if e := one(t, evs, "file_event", "TargetFilename", `C:\Users\analyst\Documents\notes.txt`); e.ProcessGUID != inv.ProcessGUID {
		t.Errorf("dropped file no call wrote: by %q", e.ProcessGUID)
	}
	one(t, evs, "file_delete", "TargetFilename", `C:\Users\analyst\AppData\Local\Temp\invoice.exe`)

	reg := one(t, evs, "registry_set", "TargetObject", `HKLM\SYSTEM\CurrentControlSet\Control\SecurityProviders\WDigest\UseLogonCredential`)
	if reg.Field("Details") != "DWORD (0x00000001)" || reg.Field("EventType") != "SetValue" {
		t.Errorf("registry_set: %v", reg.Fields.List())
	}
	if n := len(find(evs, "registry_set", "", "")); n != 1 {
		t.Errorf("%d registry_set events, want 1 (the failed call is left out)", n)
	}

	dns := one(t, evs, "dns_query", "QueryName", "pastebin.com")
	if dns.Field("QueryResults") != "104.20.67.143" || dns.ProcessGUID != inv.ProcessGUID {
		t.Errorf("dns_query: %v", dns.Fields.List())
	}
	one(t, evs, "dns_query", "QueryName", "c2.bad-example.net") // from the capture
	one(t, evs, "network_connection", "DestinationIp", "104.20.67.143")
	c2 := one(t, evs, "network_connection", "DestinationIp", "203.0.113.50")
	if c2.Field("DestinationPort") != "8443" || c2.Field("SourcePort") != "49712" || !c2.Time.Equal(time.Date(2026, 11, 30, 10, 0, 12, 500e6, time.UTC)) {
		t.Errorf("captured flow: %v at %v", c2.Fields.List(), c2.Time)
	}
	if n := len(find(evs, "network_connection", "", "")); n != 2 {
		t.Errorf("%d connections, want 2 (DNS and multicast udp left out)", n)
	}

	acc := find(evs, "process_access", "TargetProcessId", "1188")
	if len(acc) != 2 || acc[0].Field("GrantedAccess") != "0x1FFFFF" || acc[1].Field("CallTrace") != "WriteProcessMemory" ||
		acc[0].Field("SourceImage") != inv.Path {
		t.Errorf("process_access: %v", acc)
	}
	th := one(t, evs, "create_remote_thread", "TargetProcessId", "1188")
	if th.Field("SourceImage") != inv.Path || th.Field("StartAddress") != "0x02a40000" || th.Field("NewThreadId") != "4100" {
		t.Errorf("create_remote_thread: %v", th.Fields.List())
	}
	one(t, evs, "image_load", "ImageLoaded", `C:\Windows\System32\wininet.dll`)

	run := rep.Run
	if run.ID != "cape-4711" || run.Origin != "cape" || run.Sample != "invoice.exe" || run.Size != 73802 ||
		run.SHA256 != "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb" || run.MD5 != "0cc175b9c0f1b6a831c399e269772661" ||
		run.Verdict != "malicious" || run.Score != 8.4 || run.Duration != 150*time.Second ||
		!run.Started.Equal(time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("run: %+v", run)
	}
	if want := []string{"T1055", "T1070.004", "T1547", "T1547.001"}; !slices.Equal(run.Techniques, want) {
		t.Errorf("run techniques %v, want %v", run.Techniques, want)
	}
	if rep.RootGUID != inv.ProcessGUID || len(rep.Signatures) != 3 {
		t.Fatalf("root %q, %d signatures", rep.RootGUID, len(rep.Signatures))
	}
	if s := rep.Signatures[0]; s.Name != "injection_createremotethread" || s.Severity != 3 || !slices.Equal(s.Techniques, []string{"T1055"}) ||
		s.ProcessGUID != inv.ProcessGUID {
		t.Errorf("signature: %+v", s)
	}

	done := rep.Finish([]string{"T1003.001", "T1055"}, []string{"TA0006", "TA0005"}, []telemetry.SandboxRule{{Title: "rule", Source: "builtin", Severity: "high", Hits: 1}}, map[string]int{"high": 1})
	var sum struct {
		Verdict    string   `json:"verdict"`
		Techniques []string `json:"techniques"`
		Tree       []struct {
			PID      int64 `json:"pid"`
			Children []struct {
				PID      int64 `json:"pid"`
				Children []struct {
					PID int64 `json:"pid"`
				} `json:"children"`
			} `json:"children"`
		} `json:"tree"`
		Files   []telemetry.SandboxFile        `json:"files"`
		Network []telemetry.SandboxDestination `json:"network"`
	}
	if err := json.Unmarshal(done.Report, &sum); err != nil {
		t.Fatalf("report JSON: %v", err)
	}
	if !slices.Equal(done.Techniques, []string{"T1003.001", "T1055"}) || !slices.Equal(done.Tactics, []string{"TA0006", "TA0005"}) ||
		sum.Verdict != "malicious" || len(sum.Tree) != 1 || sum.Tree[0].PID != 2340 || len(sum.Tree[0].Children) != 1 ||
		len(sum.Tree[0].Children[0].Children) != 1 || sum.Tree[0].Children[0].Children[0].PID != 3100 ||
		len(sum.Files) != 2 || sum.Files[0].Path != `C:\ProgramData\svc\payload.dll` || sum.Files[0].Actions[0] != "dropped" ||
		kinds(sum.Network)["http"] != 1 {
		t.Errorf("finished run %+v, summary %s", done, done.Report)
	}
}

// TestSandboxCuckooReport: Cuckoo's layout (epoch times, arguments as an
// object, flags, ttp keyed by technique, marks naming a pid) reads as
// CAPE's does.
func TestSandboxCuckooReport(t *testing.T) {
	evs, rep := readReport(t, cuckooReport)
	for _, e := range evs {
		if e.RunID != "cuckoo-77" || e.Host != "cuckoo-win7-1" {
			t.Fatalf("event %s: run %q host %q", e.Category, e.RunID, e.Host)
		}
	}
	drop := one(t, evs, "process_creation", "ProcessId", "1608")
	note := one(t, evs, "process_creation", "ProcessId", "2200")
	if note.ParentGUID != drop.ProcessGUID || drop.Cmdline != `"C:\Users\bob\AppData\Roaming\dropper.exe"` ||
		!drop.Time.Equal(time.Date(2026, 11, 30, 10, 0, 2, 500e6, time.UTC)) {
		t.Errorf("tree: %+v / %+v", drop, note)
	}
	reg := one(t, evs, "registry_set", "TargetObject", `HKCU\Software\Microsoft\Windows\CurrentVersion\Run\updater`)
	if reg.Field("Details") != `C:\Users\bob\AppData\Roaming\dropper.exe -hidden` ||
		!reg.Time.Equal(time.Date(2026, 11, 30, 10, 0, 3, 250e6, time.UTC)) {
		t.Errorf("registry_set: %v at %v", reg.Fields.List(), reg.Time)
	}
	if e := one(t, evs, "file_event", "TargetFilename", `C:\Users\bob\AppData\Roaming\upd.exe`); !strings.Contains(e.Field("Hashes"), "SHA256=6B86B273") {
		t.Errorf("dropped file written through the API: %v", e.Fields.List())
	}
	one(t, evs, "dns_query", "QueryName", "evil.example")
	if n := len(find(evs, "network_connection", "DestinationIp", "198.51.100.7")); n != 1 {
		t.Errorf("%d connections to the C2, want 1 (the capture's flow is the API's)", n)
	}
	th := one(t, evs, "create_remote_thread", "TargetProcessId", "2200")
	if th.Field("TargetImage") != `C:\Windows\System32\notepad.exe` || th.Field("TargetProcessGuid") != note.ProcessGUID || th.Field("StartFunction") != "QueueUserAPC" {
		t.Errorf("APC injection: %v", th.Fields.List())
	}
	one(t, evs, "image_load", "ImageLoaded", `C:\Windows\System32\vaultcli.dll`)

	run := rep.Run
	if run.ID != "cuckoo-77" || run.Origin != "cuckoo" || run.Verdict != "suspicious" || run.Score != 6.2 ||
		!slices.Equal(run.Techniques, []string{"T1060"}) {
		t.Errorf("run: %+v", run)
	}
	if len(rep.Signatures) != 3 || rep.Signatures[1].Name != "antisandbox_sleep" || len(rep.Signatures[1].Techniques) != 0 ||
		rep.Signatures[1].ProcessGUID != drop.ProcessGUID {
		t.Errorf("signatures: %+v", rep.Signatures)
	}
}

// TestSandboxHostAndCompressed: --host names the events' host; a gzip
// report reads as the plain one.
func TestSandboxHostAndCompressed(t *testing.T) {
	evs, _ := readReport(t, capeReport, WithHost("lab-1"))
	if evs[0].Host != "lab-1" {
		t.Errorf("host %q", evs[0].Host)
	}
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write(mustReadFile(t, capeReport))
	w.Close()
	p := writeTemp(t, "report.json.gz", gz.String())
	zevs, rep := readReport(t, p)
	if len(zevs) != len(evs) || rep.Run.ID != "cape-4711" {
		t.Errorf("compressed: %d events (want %d), run %q", len(zevs), len(evs), rep.Run.ID)
	}
}

func mustReadFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSandboxMalformed: a broken report is an error naming the file, the
// offset and the field; unknown fields and values of unexpected scalar
// types are not.
func TestSandboxMalformed(t *testing.T) {
	full := string(mustReadFile(t, capeReport))
	cut := full[:strings.Index(full, `"api": "CreateRemoteThread"`)]
	for _, c := range []struct{ name, data, want string }{
		{"truncated", cut, "behavior.processes[0].calls[11]: the report ends early"},
		{"processes not a list", `{"info": {"id": 1, "machine": {"name": "m"}}, "behavior": {"processes": "none"}}`, "behavior.processes: want a list"},
		{"signature not an object", `{"info": {"id": 1, "machine": {"name": "m"}}, "behavior": {"processes": []}, "signatures": [3]}`, "signatures[0]: a JSON number where the report format has a object"},
		{"bad token", `{"info": {"id": 1, "machine": {"name": "m"}}, "behavior": {"processes": [{"process_id": 1, "calls": [{"api": x}]}]}}`, "behavior.processes[0].calls[0]: malformed JSON"},
		{"trailing data", `{"info": {"id": 1, "machine": {"name": "m"}}, "behavior": {"processes": []}} {}`, "data after the report's closing brace"},
	} {
		p := writeTemp(t, "report.json", c.data)
		_, _, err := Open(p)
		if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "offset ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one naming %s, an offset and %q", c.name, err, p, c.want)
		}
	}
	// Loosely typed and unknown values read.
	p := writeTemp(t, "report.json", `{"info": {"id": "9", "started": 1796032800, "machine": "box", "new": {"x": [1]}},
		"behavior": {"processes": [{"process_id": "10", "parent_id": null, "module_path": "C:\\a.exe", "first_seen": 1796032801.5,
		  "calls": [{"api": "DeleteFileW", "status": 1, "arguments": {"FileName": "C:\\x.txt"}, "extra": [1, {"y": 2}]}]}]},
		"signatures": [{"name": "s", "severity": "2", "ttp": ["T1070.004", "M0003", "bogus"], "weight": true}]}`)
	evs, rep := readReport(t, p)
	if len(evs) != 2 || evs[0].Host != "box" || evs[1].Field("TargetFilename") != `C:\x.txt` || rep.Run.ID != "cape-9" ||
		!slices.Equal(rep.Signatures[0].Techniques, []string{"T1070.004"}) || rep.Signatures[0].Severity != 2 {
		t.Errorf("loose report: %d events %+v, run %+v", len(evs), evs, rep.Run)
	}
}

// TestSandboxBounds: a value over the importers' bound is cut and its
// event marked truncated; a report without a task id gets a run id from
// its content.
func TestSandboxBounds(t *testing.T) {
	long := strings.Repeat("A", 200<<10)
	p := writeTemp(t, "report.json", `{"info": {"machine": {"name": "m"}, "package": "exe"}, "behavior": {"processes": [
		{"process_id": 5, "parent_id": 1, "module_path": "C:\\p.exe", "first_seen": "2026-01-01 00:00:00,000",
		 "environ": {"CommandLine": "p.exe `+long+`"}, "calls": []}]}, "malscore": 1.0}`)
	evs, rep := readReport(t, p)
	if len(evs) != 1 || !evs[0].Truncated || len(evs[0].Cmdline) > MaxCommandLine {
		t.Fatalf("long command line: %d events, truncated %v, %d bytes", len(evs), evs[0].Truncated, len(evs[0].Cmdline))
	}
	if !strings.HasPrefix(rep.Run.ID, "cape-") || len(rep.Run.ID) != len("cape-")+16 || rep.Run.Verdict != "clean" {
		t.Errorf("run without a task id: %+v", rep.Run)
	}
}

// kinds counts destinations by kind.
func kinds(ds []telemetry.SandboxDestination) map[string]int {
	out := map[string]int{}
	for _, d := range ds {
		out[d.Kind]++
	}
	return out
}
