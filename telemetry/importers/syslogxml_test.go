package importers

import (
	"testing"
	"time"

	"github.com/quarry-sec/quarry/telemetry"
)

// A hand-written Sysmon for Linux syslog line in the shape sysmon writes.
const sysmonLinuxSyslog = `Oct 19 19:53:27 ubuntu sshd[1]: Accepted publickey for root
Oct 19 19:53:27 ubuntu sysmon: <Event><System><Provider Name="Linux-Sysmon" Guid="{ff032593-a8d3-4f13-b0d6-01fc615a0f97}"/><EventID>1</EventID><Version>5</Version><Level>4</Level><Task>1</Task><Opcode>0</Opcode><Keywords>0x8000000000000000</Keywords><TimeCreated SystemTime="2021-10-19T19:53:27.539545000Z"/><EventRecordID>2</EventRecordID><Correlation/><Execution ProcessID="2530" ThreadID="2530"/><Channel>Linux-Sysmon/Operational</Channel><Computer>ubuntu</Computer><Security UserId="0"/></System><EventData><Data Name="RuleName">-</Data><Data Name="UtcTime">2021-10-19 19:53:27.542</Data><Data Name="ProcessGuid">{6d1b1e1a-2187-616f-7562-a1b2c3d4e5f6}</Data><Data Name="ProcessId">3056</Data><Data Name="Image">/usr/bin/curl</Data><Data Name="FileVersion">-</Data><Data Name="CommandLine">curl -s "http://x/?a=1&amp;b=&lt;2&gt;"</Data><Data Name="CurrentDirectory">/root</Data><Data Name="User">root</Data><Data Name="LogonId">0</Data><Data Name="ParentProcessId">3055</Data><Data Name="ParentImage">/usr/bin/bash</Data><Data Name="ParentCommandLine">bash</Data><Data Name="Hashes"/></EventData></Event>
`

func TestSysmonLinuxSyslog(t *testing.T) {
	evs, errs, format := openAll(t, writeTemp(t, "syslog", sysmonLinuxSyslog))
	eq(t, "format", format, FormatSysmonLinuxSyslog)
	if len(evs) != 1 || len(errs) != 0 {
		t.Fatalf("got %d events, errors %v; want 1", len(evs), errs)
	}
	e := evs[0]
	eq(t, "source", e.Source, telemetry.SourceSysmonLinux)
	eq(t, "kind", e.Kind, telemetry.KindExec)
	eq(t, "category", e.Category, "process_creation")
	eq(t, "EventID", e.EventID, 1)
	eq(t, "Path", e.Path, "/usr/bin/curl")
	eq(t, "Cmdline", e.Cmdline, `curl -s "http://x/?a=1&b=<2>"`)
	eq(t, "PID", e.PID, 3056)
	eq(t, "PPID", e.PPID, 3055)
	eq(t, "ParentPath", e.ParentPath, "/usr/bin/bash")
	eq(t, "Cwd", e.Cwd, "/root")
	eq(t, "Username", e.Username, "root")
	eq(t, "Host", e.Host, "ubuntu")
	eq(t, "RecordID", e.RecordID, 2)
	eq(t, "Time", e.Time, time.Date(2021, 10, 19, 19, 53, 27, 542e6, time.UTC))
	eq(t, "Fields[Provider_Name]", e.Field("Provider_Name"), "Linux-Sysmon")
	eq(t, "Fields[SystemTime]", e.Field("SystemTime"), "2021-10-19T19:53:27.539545000Z")
}

// TestSysmonLinuxActivity reads Sysmon for Linux's network (3), file
// create (11), file delete (23) and exit (5) events from syslog as the
// categories and fields the tables and rules read.
func TestSysmonLinuxActivity(t *testing.T) {
	evs, errs, format := openAll(t, "testdata/sysmon-linux/activity.syslog")
	eq(t, "format", format, FormatSysmonLinuxSyslog)
	if len(evs) != 5 || len(errs) != 0 {
		t.Fatalf("got %d events, errors %v; want 5", len(evs), errs)
	}
	want := []struct {
		eid      int
		kind     telemetry.Kind
		category string
		field    string
		value    string
	}{
		{1, telemetry.KindExec, "process_creation", "CommandLine", "curl -o /tmp/.x http://198.51.100.20/x"},
		{3, telemetry.KindOther, "network_connection", "DestinationIp", "198.51.100.20"},
		{11, telemetry.KindOther, "file_event", "TargetFilename", "/tmp/.x"},
		{23, telemetry.KindOther, "file_delete", "TargetFilename", "/tmp/curl.tmp"},
		{5, telemetry.KindExit, "process_termination", "Image", "/usr/bin/curl"},
	}
	for i, w := range want {
		e := evs[i]
		eq(t, "EventID", e.EventID, w.eid)
		eq(t, "source", e.Source, telemetry.SourceSysmonLinux)
		eq(t, "kind", e.Kind, w.kind)
		eq(t, "category", e.Category, w.category)
		eq(t, "PID", e.PID, 4100)
		eq(t, "ProcessGUID", e.ProcessGUID, "{6d1b1e1a-3a10-6570-1c5e-3b8a0f550000}")
		eq(t, "Path", e.Path, "/usr/bin/curl")
		eq(t, "Host", e.Host, "web2")
		eq(t, "Fields["+w.field+"]", e.Field(w.field), w.value)
	}
	eq(t, "connect DestinationPort", evs[1].Field("DestinationPort"), "80")
	eq(t, "connect time (UtcTime)", evs[1].Time, time.Date(2023, 11, 14, 22, 20, 0, 250e6, time.UTC))
}
