package importers

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/telemetry"
)

const bitsadminExcerpt = "testdata/security-datasets/bitsadmin-excerpt.json"

func TestSysmonFlatJSON(t *testing.T) {
	evs, errs, format := openAll(t, bitsadminExcerpt)
	eq(t, "format", format, FormatSysmonJSON)
	if len(errs) != 0 || len(evs) != 7 {
		t.Fatalf("got %d events, errors %v; want 7 events", len(evs), errs)
	}

	sec := evs[0]
	eq(t, "4688 kind", sec.Kind, telemetry.KindExec)
	eq(t, "4688 source", sec.Source, telemetry.SourceSecurity)
	eq(t, "4688 category", sec.Category, "process_creation")
	eq(t, "4688 EventID", sec.EventID, 4688)
	eq(t, "4688 Channel", sec.Channel, "Security")
	eq(t, "4688 Path", sec.Path, `C:\Windows\System32\bitsadmin.exe`)
	eq(t, "4688 PID (0x242c)", sec.PID, 0x242c)
	eq(t, "4688 PPID (0x273c)", sec.PPID, 0x273c)
	eq(t, "4688 ParentPath", sec.ParentPath, `C:\Windows\System32\cmd.exe`)
	eq(t, "4688 Username", sec.Username, `WORKSTATION5\wardog`)
	eq(t, "4688 IntegrityLevel", sec.IntegrityLevel, "High")
	eq(t, "4688 LogonID", sec.LogonID, "0xc61d9")
	eq(t, "4688 Cmdline", sec.Cmdline, `bitsadmin.exe  /transfer /Download /priority Foreground https://raw.githubusercontent.com/redcanaryco/atomic-red-team/master/atomics/T1197/T1197.md C:\Users\wardog\AppData\Local\Temp\bitsadmin1_flag.ps1`)
	eq(t, "4688 Host", sec.Host, "WORKSTATION5")
	// TimeCreated says 02:36:43.542Z, but the file's Sysmon records show it
	// 4 h behind their UtcTime: corrected.
	eq(t, "4688 Time", sec.Time, time.Date(2020, 10, 23, 6, 36, 43, 542e6, time.UTC))
	eq(t, "4688 RecordID (line)", sec.RecordID, 1)
	eq(t, "4688 UID", sec.UID, telemetry.Unknown)
	eq(t, "4688 Fields[NewProcessId]", sec.Field("NewProcessId"), "0x242c")
	eq(t, "4688 Fields[TokenElevationType]", sec.Field("TokenElevationType"), "%%1936")
	eq(t, "4688 Fields[EventID]", sec.Field("EventID"), "4688")
	eq(t, "4688 Fields[Computer]", sec.Field("Computer"), "WORKSTATION5")
	eq(t, "4688 Fields[Provider_Name]", sec.Field("Provider_Name"), "Microsoft-Windows-Security-Auditing")
	if _, ok := sec.Fields.Get("Message"); ok {
		t.Error("Fields holds Message; it is left out")
	}

	sm := evs[1]
	eq(t, "sysmon kind", sm.Kind, telemetry.KindExec)
	eq(t, "sysmon source", sm.Source, telemetry.SourceSysmon)
	eq(t, "sysmon category", sm.Category, "process_creation")
	eq(t, "sysmon Path", sm.Path, `C:\Windows\System32\bitsadmin.exe`)
	eq(t, "sysmon Cmdline", sm.Cmdline, sec.Cmdline)
	eq(t, "sysmon PID", sm.PID, 9260)
	eq(t, "sysmon PPID", sm.PPID, 10044)
	eq(t, "sysmon ParentPath", sm.ParentPath, `C:\Windows\System32\cmd.exe`)
	eq(t, "sysmon ParentCmdline", sm.ParentCmdline, `"C:\windows\system32\cmd.exe" `)
	eq(t, "sysmon Username", sm.Username, `WORKSTATION5\wardog`)
	eq(t, "sysmon Cwd", sm.Cwd, `C:\Users\wardog\`)
	eq(t, "sysmon IntegrityLevel", sm.IntegrityLevel, "High")
	eq(t, "sysmon OriginalFileName", sm.OriginalFileName, "bitsadmin.exe")
	eq(t, "sysmon ProcessGUID", sm.ProcessGUID, "{39e4a257-79fb-5f92-7117-000000000700}")
	eq(t, "sysmon ParentGUID", sm.ParentGUID, "{39e4a257-79ed-5f92-6e17-000000000700}")
	eq(t, "sysmon Time (UtcTime)", sm.Time, time.Date(2020, 10, 23, 6, 36, 43, 542e6, time.UTC))
	if !strings.HasPrefix(sm.Hashes, "SHA1=282DA9EE622F01CC63352E53FDC3D4A75CEEB6FD,") {
		t.Errorf("sysmon Hashes = %q", sm.Hashes)
	}
	eq(t, "sysmon Fields[Product]", sm.Field("Product"), "Microsoft® Windows® Operating System")
	eq(t, "sysmon Fields[Company]", sm.Field("Company"), "Microsoft Corporation")
	eq(t, "sysmon Fields[Description]", sm.Field("Description"), "BITS administration utility")
	eq(t, "sysmon Fields[Image]", sm.Field("Image"), sm.Path)
	eq(t, "sysmon Fields[Channel]", sm.Field("Channel"), "Microsoft-Windows-Sysmon/Operational")

	reg := evs[2]
	eq(t, "EID 13 kind", reg.Kind, telemetry.KindOther)
	eq(t, "EID 13 category", reg.Category, "registry_set")
	eq(t, "EID 13 EventID", reg.EventID, 13)
	if reg.Field("TargetObject") == "" {
		t.Error("EID 13 lost TargetObject")
	}
	eq(t, "EID 3 category", evs[3].Category, "network_connection")
	eq(t, "EID 3 DestinationIp", evs[3].Field("DestinationIp"), "239.255.255.250")

	exit := evs[4]
	eq(t, "EID 5 kind", exit.Kind, telemetry.KindExit)
	eq(t, "EID 5 category", exit.Category, "process_termination")
	eq(t, "EID 5 Path", exit.Path, `C:\Windows\System32\wbem\WmiPrvSE.exe`)

	secExit := evs[5]
	eq(t, "4689 kind", secExit.Kind, telemetry.KindExit)
	eq(t, "4689 source", secExit.Source, telemetry.SourceSecurity)
	eq(t, "4689 PID (0x2b90)", secExit.PID, 0x2b90)
	eq(t, "4689 ExitCode", secExit.ExitCode, 0)
	eq(t, "4689 Username", secExit.Username, `WORKGROUP\WORKSTATION5$`)

	logon := evs[6]
	eq(t, "4624 kind", logon.Kind, telemetry.KindOther)
	eq(t, "4624 source", logon.Source, telemetry.SourceWindows)
	eq(t, "4624 EventID", logon.EventID, 4624)
}

func TestHostOptions(t *testing.T) {
	evs, _, _ := openAll(t, bitsadminExcerpt, WithHost("override"))
	eq(t, "WithHost", evs[0].Host, "override")
	evs, _, _ = openAll(t, bitsadminExcerpt, WithDefaultHost("fallback"))
	eq(t, "WithDefaultHost with a Hostname in the record", evs[0].Host, "WORKSTATION5")
	evs, _, _ = openAll(t, "testdata/security-datasets/arp-cache.log", WithDefaultHost("fallback"))
	eq(t, "WithDefaultHost on auditd", evs[0].Host, "fallback")
}

func TestNestedJSONMatchesEVTX(t *testing.T) {
	evs, errs, format := openAll(t, "testdata/sigma/wmic-terminate.json")
	eq(t, "format", format, FormatSysmonJSON)
	if len(evs) != 1 || len(errs) != 0 {
		t.Fatalf("got %d events, errors %v", len(evs), errs)
	}
	checkWmic(t, evs[0])
	xevs, xerrs, xformat := openAll(t, "testdata/sigma/wmic-terminate.evtx")
	eq(t, "evtx format", xformat, FormatSysmonEVTX)
	if len(xevs) != 1 || len(xerrs) != 0 {
		t.Fatalf("evtx: got %d events, errors %v", len(xevs), xerrs)
	}
	checkWmic(t, xevs[0])
	for k, v := range evs[0].Fields.All() {
		if xv, ok := xevs[0].Fields.Get(k); !ok || xv != v {
			t.Errorf("Fields[%q]: json %q, evtx %q", k, v, xv)
		}
	}
	if evs[0].Fields.Len() != xevs[0].Fields.Len() {
		t.Errorf("json has %d fields, evtx %d", evs[0].Fields.Len(), xevs[0].Fields.Len())
	}
}

// checkWmic asserts the one event of the SigmaHQ wmic regression recording.
func checkWmic(t *testing.T, e telemetry.Event) {
	t.Helper()
	eq(t, "kind", e.Kind, telemetry.KindExec)
	eq(t, "source", e.Source, telemetry.SourceSysmon)
	eq(t, "category", e.Category, "process_creation")
	eq(t, "Path", e.Path, `C:\Windows\System32\wbem\WMIC.exe`)
	eq(t, "Cmdline", e.Cmdline, `"C:\WINDOWS\System32\Wbem\WMIC.exe" process where "commandline like "%%%%node server/index.js%%%%"" call terminate`)
	eq(t, "PID", e.PID, 5184)
	eq(t, "PPID", e.PPID, 14012)
	eq(t, "ParentPath", e.ParentPath, `C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe`)
	eq(t, "Username", e.Username, `swachchhanda\xodih`)
	eq(t, "LogonID", e.LogonID, "0x7e2aa")
	eq(t, "Host", e.Host, "swachchhanda")
	eq(t, "Time", e.Time, time.Date(2025, 12, 15, 12, 24, 43, 6e6, time.UTC))
	eq(t, "RecordID", e.RecordID, 74989)
	eq(t, "Fields[ParentUser]", e.Field("ParentUser"), `swachchhanda\xodih`)
	eq(t, "Fields[Computer]", e.Field("Computer"), "swachchhanda")
	eq(t, "Fields[Provider_Name]", e.Field("Provider_Name"), "Microsoft-Windows-Sysmon")
	eq(t, "Fields[EventID]", e.Field("EventID"), "1")
	eq(t, "Fields[TerminalSessionId]", e.Field("TerminalSessionId"), "1")
	eq(t, "Fields[Keywords]", e.Field("Keywords"), "0x8000000000000000")
	eq(t, "Fields[TimeCreated_SystemTime]", e.Field("TimeCreated_SystemTime"), "2025-12-15T12:24:43.008589Z")
}

func TestNestedJSONStreamShapes(t *testing.T) {
	one := readFile(t, "testdata/sigma/wmic-terminate.json")
	compact := `{"Event":{"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Security-Auditing"}},"EventID":{"#text":4688,"#attributes":{"Qualifiers":""}},"TimeCreated":{"#attributes":{"SystemTime":"2024-01-02T03:04:05.123456Z"}},"EventRecordID":7,"Channel":"Security","Computer":"dc1"},"EventData":{"NewProcessId":"0x10","ProcessId":"0x4","NewProcessName":"C:\\x.exe","MandatoryLabel":"S-1-16-8192","SubjectUserName":"bob","SubjectDomainName":"CORP","Empty":null}}}`
	cases := map[string]struct {
		data string
		n    int
	}{
		"pretty objects one after another": {one + one + "\n" + one, 3},
		"array of pretty objects":          {"[\n" + one + ",\n" + one + "\n]\n", 2},
		"nested objects one per line":      {compact + "\n" + compact + "\n", 2},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			evs, errs, format := openAll(t, writeTemp(t, "x.json", c.data))
			eq(t, "format", format, FormatSysmonJSON)
			if len(errs) != 0 || len(evs) != c.n {
				t.Fatalf("got %d events, errors %v; want %d", len(evs), errs, c.n)
			}
		})
	}
	evs, _, _ := openAll(t, writeTemp(t, "x.json", compact+"\n"))
	e := evs[0]
	eq(t, "nested 4688 EventID", e.EventID, 4688)
	eq(t, "nested 4688 PID", e.PID, 16)
	eq(t, "nested 4688 PPID", e.PPID, 4)
	eq(t, "nested 4688 Username", e.Username, `CORP\bob`)
	eq(t, "nested 4688 IntegrityLevel", e.IntegrityLevel, "Medium")
	eq(t, "nested 4688 Host", e.Host, "dc1")
	eq(t, "nested 4688 RecordID", e.RecordID, 7)
	eq(t, "nested 4688 Time", e.Time, time.Date(2024, 1, 2, 3, 4, 5, 123456000, time.UTC))
	if _, ok := e.Fields.Get("Empty"); ok {
		t.Error("a null field is kept")
	}
}

func TestPowerShellAndSysmonLinuxJSON(t *testing.T) {
	data := `{"EventID":4104,"Channel":"Microsoft-Windows-PowerShell/Operational","Hostname":"h","ScriptBlockText":"IEX (New-Object Net.WebClient)","@timestamp":"2021-01-01T00:00:00Z"}
{"EventID":1,"Channel":"Linux-Sysmon/Operational","Hostname":"lx","Image":"/usr/bin/curl","CommandLine":"curl -s http://x","ProcessId":"42","ParentProcessId":"1","ParentImage":"/bin/bash","User":"root","UtcTime":"2021-10-19 19:53:27.542"}
`
	evs, errs, _ := openAll(t, writeTemp(t, "x.json", data))
	if len(evs) != 2 || len(errs) != 0 {
		t.Fatalf("got %d events, errors %v", len(evs), errs)
	}
	eq(t, "4104 category", evs[0].Category, "ps_script")
	eq(t, "4104 source", evs[0].Source, telemetry.SourceWindows)
	eq(t, "4104 ScriptBlockText", evs[0].Field("ScriptBlockText"), "IEX (New-Object Net.WebClient)")
	eq(t, "linux source", evs[1].Source, telemetry.SourceSysmonLinux)
	eq(t, "linux kind", evs[1].Kind, telemetry.KindExec)
	eq(t, "linux PID", evs[1].PID, 42)
	eq(t, "linux Path", evs[1].Path, "/usr/bin/curl")
}

// TestPredictedKeys reads records whose keys come in the previous record's
// order (matched by their raw bytes) and records that break the prediction
// (other order, spaces, escaped keys, fewer and more members): every
// record's fields must be those of the record read on its own.
func TestPredictedKeys(t *testing.T) {
	const sysmon = `"EventID":1,"Channel":"Microsoft-Windows-Sysmon/Operational",`
	records := []string{
		`{` + sysmon + `"Image":"C:\\a.exe","CommandLine":"a b"}`,
		`{` + sysmon + `"Image":"C:\\b.exe","CommandLine":"c d"}`,
		`{ "EventID" : 1 , "Channel":"Microsoft-Windows-Sysmon/Operational" , "Image" : "x" ,"CommandLine":"y"}`,
		`{` + sysmon + `"CommandLine":"swapped","Image":"C:\\c.exe"}`,
		`{` + sysmon + `"Imag\u0065":"escaped key","CommandLine":"e"}`,
		`{` + sysmon + `"Image":"fewer"}`,
		`{` + sysmon + `"Image":"more","CommandLine":"f","User":"u","Imag":"prefix of a key"}`,
		`{` + sysmon + `"Image":"C:\\d.exe","CommandLine":"g","User":"v","Imag":"w"}`,
	}
	stream, _, _ := openAll(t, writeTemp(t, "stream.json", strings.Join(records, "\n")+"\n"))
	if len(stream) != len(records) {
		t.Fatalf("read %d events of %d records", len(stream), len(records))
	}
	for i, rec := range records {
		alone, _, _ := openAll(t, writeTemp(t, "one.json", rec+"\n"))
		if len(alone) != 1 {
			t.Fatalf("record %d alone: %d events", i, len(alone))
		}
		if got, want := stream[i].Fields.List(), alone[0].Fields.List(); !reflect.DeepEqual(got, want) {
			t.Errorf("record %d in the stream: %v; alone: %v", i, got, want)
		}
	}
	if v, _ := stream[4].Fields.Get("Image"); v != "escaped key" {
		t.Errorf("escaped key: Image = %q", v)
	}
	if v, _ := stream[6].Fields.Get("Imag"); v != "prefix of a key" {
		t.Errorf("Imag = %q", v)
	}
	// A key that starts like the predicted one but is not closed where
	// it would end is malformed, not the predicted key.
	bad := records[0] + "\n" + `{` + sysmon + `"ImageX:"C:\\b.exe","CommandLine":"c d"}` + "\n"
	evs, errs, _ := openAll(t, writeTemp(t, "bad.json", bad))
	if len(evs) != 1 || len(errs) != 1 {
		t.Errorf("unclosed key after a predicted one: %d events, %d record errors; want 1 and 1", len(evs), len(errs))
	}
}

// TestDefenderSpacedNames: Defender's fields named with spaces are
// reachable by SigmaHQ's names without them; a joined name the record
// already has keeps its own value.
func TestDefenderSpacedNames(t *testing.T) {
	line := `{"EventID": 1116, "Channel": "Microsoft-Windows-Windows Defender/Operational", "Hostname": "WKS1", ` +
		`"@timestamp": "2024-05-01T10:01:35.000Z", "Threat Name": "HackTool:Win32/Mimikatz", "Detection User": "CORP\\alice", ` +
		`"Severity Name": "High", "Process Name": "C:\\Temp\\m.exe", "Path": "file:_C:\\Temp\\m.exe", "Category Name": "Tool", "CategoryName": "kept"}` + "\n"
	evs, errs, _ := openAll(t, writeTemp(t, "defender.json", line))
	if len(evs) != 1 || len(errs) != 0 {
		t.Fatalf("got %d events, errors %v", len(evs), errs)
	}
	e := evs[0]
	for name, want := range map[string]string{"ThreatName": "HackTool:Win32/Mimikatz", "DetectionUser": `CORP\alice`,
		"SeverityName": "High", "ProcessName": `C:\Temp\m.exe`, "Path": `file:_C:\Temp\m.exe`, "CategoryName": "kept",
		"Threat Name": "", "Detection User": ""} {
		eq(t, "Fields["+name+"]", e.Field(name), want)
	}
}
