package activity_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/extension/sqlengine"
	"github.com/quarry-sec/quarry/tables"
	"github.com/quarry-sec/quarry/tables/activity"
	"github.com/quarry-sec/quarry/tables/process"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
	"github.com/quarry-sec/quarry/telemetry/importers"
)

// psKey is the process key the store gave the PowerShell process (pid
// 4242): newEngine reads it from process_events, so the tests check that
// every event of that process carries its start's key.
var psKey string

// readTestdata imports testdata/activity.jsonl (Sysmon, Security, System,
// PowerShell, Task Scheduler and Defender records in the flattened form)
// and returns its events and how many records were malformed.
func readTestdata(t testing.TB) ([]telemetry.Event, int) {
	t.Helper()
	r, _, err := importers.Open(filepath.Join("testdata", "activity.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var evs []telemetry.Event
	bad := 0
	for {
		e, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		var re *telemetry.RecordError
		if errors.As(err, &re) {
			bad++
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e)
	}
	return evs, bad
}

// linuxEvents are live Linux events as the eBPF collector records them.
func linuxEvents() []telemetry.Event {
	t := time.Date(2024, 5, 1, 11, 0, 0, 0, time.UTC)
	mk := func(i int, cat string, kv ...string) telemetry.Event {
		e := telemetry.NewEvent(telemetry.KindOther, telemetry.SourceEBPF)
		e.Time = t.Add(time.Duration(i) * time.Second)
		e.Host = "lin1"
		e.Category = cat
		e.PID = 777
		e.Path = "/usr/bin/python3"
		for j := 0; j+1 < len(kv); j += 2 {
			e.Fields.Set(kv[j], kv[j+1])
		}
		return e
	}
	return []telemetry.Event{
		mk(0, "network_connection", "Image", "/usr/bin/python3", "Protocol", "tcp", "Initiated", "true", "SourceIp", "10.1.1.1",
			"SourcePort", "40000", "DestinationIp", "198.51.100.1", "DestinationPort", "4444", "Action", "connect"),
		mk(1, "network_connection", "Protocol", "tcp", "Initiated", "false", "SourceIp", "0.0.0.0", "SourcePort", "8080", "Action", "listen"),
		mk(2, "file_event", "TargetFilename", "/etc/cron.d/evil", "Action", "write"),
		mk(3, "file_event", "TargetFilename", "/tmp/x", "Action", "chmod", "Mode", "0755"),
		mk(4, "file_rename", "SourceFilename", "/tmp/a", "TargetFilename", "/tmp/.a"),
		mk(5, "file_delete", "TargetFilename", "/var/log/auth.log"),
		mk(6, "dns_query", "QueryName", "c2.example", "QueryStatus", "0", "QueryResults", "198.51.100.1"),
		mk(7, "driver_load", "ImageLoaded", "/lib/modules/rk.ko"),
		mk(8, "image_load", "ImageLoaded", "memfd:payload"),
		mk(9, "process_access", "TargetProcessId", "1", "TargetImage", "/sbin/init", "GrantedAccess", "ptrace:attach"),
	}
}

func newStore(t testing.TB) *eventstore.Store {
	t.Helper()
	st, err := eventstore.Open(filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// newEngine stores the test events and opens the embedded engine over the
// activity tables and process_events.
func newEngine(t *testing.T) *sqlengine.Engine {
	t.Helper()
	evs, bad := readTestdata(t)
	if bad != 1 {
		t.Errorf("%d malformed records, want the 1 broken line", bad)
	}
	if len(evs) != 37 {
		t.Errorf("%d records imported, want 37 (the broken line skipped, the rest kept)", len(evs))
	}
	evs = append(evs, linuxEvents()...)
	st := newStore(t)
	if _, err := st.Append(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	reg := tables.NewRegistry()
	if err := reg.Register(append(activity.Tables(st), process.Events(st, process.Options{}))...); err != nil {
		t.Fatal(err)
	}
	e, err := sqlengine.Open(reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	keys := rows(t, e, "SELECT process_key FROM process_events WHERE pid = 4242 AND syscall = 'execve'")
	if len(keys) != 1 || keys[0] == "" || keys[0] == "NULL" {
		t.Fatalf("the PowerShell process's key: %v", keys)
	}
	psKey = keys[0]
	return e
}

// rows runs a query and returns its rows as text ("NULL" for NULL), one
// "|"-joined string a row.
func rows(t *testing.T, e *sqlengine.Engine, q string) []string {
	t.Helper()
	rs, err := e.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rs.Close()
	cols, _ := rs.Columns()
	var out []string
	for rs.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		parts := make([]string, len(cols))
		for i, v := range vals {
			parts[i] = "NULL"
			if v.Valid {
				parts[i] = v.String
			}
		}
		out = append(out, strings.Join(parts, "|"))
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestTablesShowRealValues(t *testing.T) {
	e := newEngine(t)
	cases := []struct {
		query string
		want  []string
	}{
		{`SELECT action, family, protocol, local_address, local_port, remote_address, remote_port, remote_hostname, direction, success, pid, path
		  FROM socket_events ORDER BY time`, []string{
			`connect|2|6|10.0.0.5|50000|203.0.113.7|443|evil.example|outbound|1|4242|C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe`,
			`accept|2|17|10.0.0.5|53|198.51.100.9|5353|NULL|inbound|1|900|C:\Windows\System32\svchost.exe`,
			`accept|2|6|10.0.0.5|3389|192.0.2.44|61000|NULL|inbound|1|1234|\device\harddiskvolume2\windows\system32\svchost.exe`,
			`bind|2|6|0.0.0.0|3389|NULL|NULL|NULL|NULL|1|1234|\device\harddiskvolume2\windows\system32\svchost.exe`,
			`connect|2|6|10.1.1.1|40000|198.51.100.1|4444|NULL|outbound|1|777|/usr/bin/python3`,
			`listen|2|6|0.0.0.0|8080|NULL|NULL|NULL|NULL|1|777|/usr/bin/python3`,
		}},
		{`SELECT action, target_path, source_path, md5, sha256, mode, is_executable FROM file_events ORDER BY time`, []string{
			`create|C:\Users\alice\AppData\Local\Temp\payload.exe|NULL|NULL|NULL|NULL|NULL`,
			`delete|C:\Users\alice\AppData\Local\Temp\old.log|NULL|bb11|cc22|NULL|false`,
			`modify|/etc/cron.d/evil|NULL|NULL|NULL|NULL|NULL`,
			`chmod|/tmp/x|NULL|NULL|NULL|0755|NULL`,
			`rename|/tmp/.a|/tmp/a|NULL|NULL|NULL|NULL`,
			`delete|/var/log/auth.log|NULL|NULL|NULL|NULL|NULL`,
		}},
		{`SELECT action, key, value_name, details, previous_details, new_name FROM registry_events ORDER BY time`, []string{
			`set_value|HKU\S-1-5-21-1\Software\Microsoft\Windows\CurrentVersion\Run|Updater|C:\Users\alice\AppData\Local\Temp\payload.exe|NULL|NULL`,
			`create_key|HKLM\SOFTWARE\Evil|NULL|NULL|NULL|NULL`,
			`rename_key|HKLM\SOFTWARE\Evil|NULL|NULL|NULL|HKLM\SOFTWARE\Benign`,
			`set_value|HKLM\SOFTWARE\Policies\Microsoft\Windows Defender|DisableAntiSpyware|1|0|NULL`,
		}},
		{`SELECT name, status, answers, host_identifier FROM dns_lookup_events ORDER BY time`, []string{
			`evil.example|0|::ffff:203.0.113.7;|WKS1`,
			`c2.example|0|198.51.100.1|lin1`,
		}},
		{`SELECT action, image_loaded, signed, md5 FROM image_load_events ORDER BY time`, []string{
			`load|C:\Users\alice\AppData\Local\Temp\evil.dll|0|dd33`,
			`driver_load|C:\Windows\System32\drivers\rootkit.sys|1|NULL`,
			`module_load|/lib/modules/rk.ko|NULL|NULL`,
			`memfd_load|memfd:payload|NULL|NULL`,
		}},
		{`SELECT pid, target_pid, target_path, granted_access, access, source_thread_id FROM process_access_events ORDER BY time`, []string{
			`4242|756|C:\Windows\system32\lsass.exe|0x1010|PROCESS_VM_READ|PROCESS_QUERY_LIMITED_INFORMATION|77`,
			`777|1|/sbin/init|ptrace:attach|ptrace:attach|NULL`,
		}},
		{`SELECT pid, target_pid, new_thread_id, start_address FROM remote_thread_events`, []string{`4242|100|555|0x00007FF6A0B0C000`}},
		{`SELECT action, user, domain, logon_type, logon_type_name, source_address, source_port, failure_reason, elevated_token, impersonation_level
		  FROM logon_events ORDER BY time`, []string{
			`logon|alice|CORP|10|RemoteInteractive|192.0.2.44|51515|NULL|Yes|Impersonation`,
			`logon_failed|admin|CORP|3|Network|192.0.2.44|NULL|Unknown user name or bad password. (User logon with misspelled or bad password)|NULL|NULL`,
		}},
		{`SELECT action, service_name, image_path, start_type, service_type, account FROM service_events ORDER BY time`, []string{
			`installed|PSEXESVC|%SystemRoot%\PSEXESVC.exe|demand start|user mode service|LocalSystem`,
			`installed|evilsvc|C:\evil.exe|auto start|user mode service|LocalSystem`,
		}},
		{`SELECT action, task_name, command, arguments, username FROM scheduled_task_events`, []string{
			`created|\Updater|C:\Windows\System32\cmd.exe|/c "C:\Temp\a.bat" & exit|CORP\alice`,
		}},
		{`SELECT action, script_block_id, script_text, script_path, message_total, complete, host_application, command_name
		  FROM script_events ORDER BY time`, []string{
			`script_block|{aaaa}|$a = 1;Write-Host 'middle';IEX $payload|NULL|3|1|NULL|NULL`,
			`script_block|{bbbb}|Get-Process|NULL|1|1|NULL|NULL`,
			`script_block|{cccc}|lonely part|NULL|2|0|NULL|NULL`,
			`module|NULL|CommandInvocation(Invoke-WebRequest): "Invoke-WebRequest"|NULL|NULL|NULL|powershell.exe -enc AAAA|Invoke-WebRequest`,
			`engine_start|NULL|powershell.exe -nop -c whoami|NULL|NULL|NULL|powershell.exe -nop -c whoami|NULL`,
		}},
		{`SELECT action, pipe_name FROM pipe_events`, []string{`created|\evilpipe`}},
		{`SELECT action, operation, name, query FROM wmi_events`, []string{`filter|Created|"EvilFilter"|"SELECT * FROM __InstanceModificationEvent"`}},
		{`SELECT action, share_name, relative_target_name, access, source_address FROM share_access_events`, []string{
			`access_checked|\\*\C$|Windows\Temp\x.exe|WriteData (or AddFile), AppendData (or AddSubdirectory or CreatePipeInstance)|192.0.2.44`,
		}},
		{`SELECT action, log, subject_user FROM log_tamper_events ORDER BY time`, []string{
			`security_log_cleared|Security|CORP\alice`, `log_cleared|NULL|CORP\alice`,
		}},
		{`SELECT action, object_type, access, pid, path FROM object_access_events`, []string{
			`object_accessed|Process|Read from process memory|4242|C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe`,
		}},
		{`SELECT action, target_name, target_sid, pid FROM account_events`, []string{`group_members_enumerated|Administrators|S-1-5-32-544|4242`}},
		// Defender's spaced names are joined on import, as SigmaHQ names them.
		{`SELECT json_extract(fields, '$.ThreatName'), json_extract(fields, '$.ProcessName'), table_name FROM events WHERE event_id = 1116`, []string{
			`HackTool:Win32/Mimikatz|C:\Temp\m.exe|events`,
		}},
		{`SELECT count(*) FROM events`, []string{"47"}},
		{`SELECT count(*) FROM events WHERE table_name = 'events'`, []string{"2"}},
		{`SELECT count(*) FROM events WHERE category = 'network_connection'`, []string{"4"}},
		{`SELECT count(*) FROM events WHERE channel = 'Security' AND event_id IN (5156, 5158, 4624)`, []string{"3"}},
		{`SELECT process_key FROM process_events`, []string{psKey}},
	}
	for _, c := range cases {
		got := rows(t, e, c.query)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s\n got %q\nwant %q", c.query, got, c.want)
		}
	}
}

func TestPushdownConstraints(t *testing.T) {
	e := newEngine(t)
	start := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC).Unix()
	cases := []struct {
		query string
		want  string
	}{
		{"SELECT count(*) FROM socket_events WHERE pid = 4242", "1"},
		{"SELECT count(*) FROM socket_events WHERE pid = 1234", "2"}, // Security 5156/5158: the pid is in the fields
		{"SELECT count(*) FROM socket_events WHERE pid IN (900, 777)", "3"},
		{"SELECT count(*) FROM socket_events WHERE host_identifier = 'lin1'", "2"},
		{"SELECT count(*) FROM socket_events WHERE source = 'windows'", "2"},
		{fmt.Sprintf("SELECT count(*) FROM socket_events WHERE time >= %d AND time < %d", start, start+2), "1"},
		{fmt.Sprintf("SELECT count(*) FROM file_events WHERE time BETWEEN %d AND %d", start+5, start+6), "2"},
		{"SELECT count(*) FROM registry_events WHERE process_key = '" + psKey + "'", "3"},
		{"SELECT count(*) FROM registry_events WHERE eid > 8 AND eid <= 10", "2"},
		{"SELECT count(*) FROM registry_events WHERE event_id = 4657", "1"},
		{"SELECT count(*) FROM registry_events WHERE event_id = 3", "0"},
		{"SELECT count(*) FROM file_events WHERE pid = NULL", "0"},
		{"SELECT count(*) FROM events WHERE process_key = '" + psKey + "' AND category = 'registry_set'", "1"},
	}
	for _, c := range cases {
		if got := rows(t, e, c.query); len(got) != 1 || got[0] != c.want {
			t.Errorf("%s: %v, want %s", c.query, got, c.want)
		}
	}
}

func TestProcessActivityListsOneProcessInTimeOrder(t *testing.T) {
	e := newEngine(t)
	got := rows(t, e, "SELECT kind, table_name, summary FROM process_activity WHERE process_key = '"+psKey+"'")
	want := []string{
		"process|process_events|execve powershell.exe -nop -w hidden",
		"network|socket_events|connect tcp 10.0.0.5:50000 -> 203.0.113.7:443 (evil.example)",
		`file|file_events|create C:\Users\alice\AppData\Local\Temp\payload.exe`,
		`file|file_events|delete C:\Users\alice\AppData\Local\Temp\old.log`,
		`registry|registry_events|set_value HKU\S-1-5-21-1\Software\Microsoft\Windows\CurrentVersion\Run\Updater = C:\Users\alice\AppData\Local\Temp\payload.exe`,
		`registry|registry_events|create_key HKLM\SOFTWARE\Evil`,
		`registry|registry_events|rename_key HKLM\SOFTWARE\Evil -> HKLM\SOFTWARE\Benign`,
		"dns|dns_lookup_events|query evil.example -> ::ffff:203.0.113.7;",
		`image_load|image_load_events|load C:\Users\alice\AppData\Local\Temp\evil.dll -`,
		`process_access|process_access_events|C:\Windows\system32\lsass.exe 0x1010 PROCESS_VM_READ|PROCESS_QUERY_LIMITED_INFORMATION`,
		`remote_thread|remote_thread_events|thread in C:\Windows\explorer.exe (pid 100) at - - 0x00007FF6A0B0C000`,
		`pipe|pipe_events|created \evilpipe`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("process_activity\n got %q\nwant %q", got, want)
	}
}

func TestTableOfCountsImport(t *testing.T) {
	evs, _ := readTestdata(t)
	evs = append(evs, linuxEvents()...)
	c := activity.Counts{}
	for i := range evs {
		c.Add(&evs[i])
	}
	want := map[string]int{"process_events": 1, "socket_events": 6, "file_events": 6, "registry_events": 4, "dns_lookup_events": 2,
		"image_load_events": 4, "process_access_events": 2, "remote_thread_events": 1, "logon_events": 2, "service_events": 2,
		"scheduled_task_events": 1, "script_events": 7, "pipe_events": 1, "wmi_events": 1, "share_access_events": 1,
		"log_tamper_events": 2, "object_access_events": 1, "account_events": 1, "": 2}
	if !reflect.DeepEqual(map[string]int(c), want) {
		t.Errorf("counts\n got %v\nwant %v", c, want)
	}
	var b strings.Builder
	c.Print(&b)
	if !strings.HasPrefix(b.String(), "tables: 45 of 47 events (95.7%) in named tables, 2 only in events\n") {
		t.Errorf("summary:\n%s", b.String())
	}
}

// TestAuditdActivityLinksToProcess imports the importers' hand-written
// auditd log and finds its connects, file writes and module loads in their
// tables, each with the pid and process_key of the exec that started the
// acting process.
func TestAuditdActivityLinksToProcess(t *testing.T) {
	e := engineOver(t, filepath.Join("..", "..", "telemetry", "importers", "testdata", "auditd", "activity.log"))
	bash := rows(t, e, "SELECT process_key FROM process_events WHERE pid = 2001 AND syscall = 'execve'")
	insmod := rows(t, e, "SELECT process_key FROM process_events WHERE pid = 2002 AND syscall = 'execve'")
	if len(bash) != 1 || len(insmod) != 1 || bash[0] == insmod[0] {
		t.Fatalf("exec keys: bash %v, insmod %v", bash, insmod)
	}
	k := func(s string) string {
		return strings.ReplaceAll(strings.ReplaceAll(s, bash[0], "BASH"), insmod[0], "INSMOD")
	}
	cases := []struct {
		query string
		want  []string
	}{
		{`SELECT action, family, local_address, local_port, remote_address, remote_port, direction, pid, process_key, path, source
		  FROM socket_events ORDER BY time`, []string{
			"connect|2|NULL|NULL|198.51.100.7|4444|outbound|2001|BASH|/usr/bin/bash|auditd",
			"connect|10|NULL|NULL|2001:db8::1|443|outbound|2001|BASH|/usr/bin/bash|auditd",
			"connect|1|NULL|NULL|/var/run/docker.sock|NULL|outbound|2001|BASH|/usr/bin/bash|auditd",
			"connect|1|NULL|NULL|@/tmp/.X11-unix/X0|NULL|outbound|2001|BASH|/usr/bin/bash|auditd",
			"bind|2|0.0.0.0|8080|NULL|NULL|NULL|2003|" + "U|/usr/bin/python3.11|auditd",
			"accept|2|NULL|NULL|203.0.113.5|51515|inbound|2003|U|/usr/bin/python3.11|auditd",
			"connect|2|NULL|NULL|192.0.2.10|53|outbound|2001|BASH|/usr/bin/bash|auditd",
		}},
		{`SELECT action, target_path, source_path, pid, process_key FROM file_events ORDER BY time`, []string{
			"create|/etc/cron.d/evil|NULL|2001|BASH",
			"modify|/home/alice/notes.txt|NULL|2001|BASH",
			"delete|/var/log/auth.log|NULL|2001|BASH",
			"rename|/tmp/.a|/tmp/a|2001|BASH",
		}},
		{`SELECT action, image_loaded, pid, process_key FROM image_load_events ORDER BY time`, []string{
			"module_load|rk|2002|INSMOD",
			"module_load|NULL|2002|INSMOD",
		}},
	}
	for _, c := range cases {
		var got []string
		for _, r := range rows(t, e, c.query) {
			// python3 (pid 2003) has no exec in the log: its key is the
			// first event's ("u:…"); only its prefix is fixed.
			parts := strings.Split(k(r), "|")
			for i, p := range parts {
				if strings.HasPrefix(p, "u:") {
					parts[i] = "U"
				}
			}
			got = append(got, strings.Join(parts, "|"))
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s:\n got %q\nwant %q", c.query, got, c.want)
		}
	}
}

// TestSysmonLinuxActivityTables stores the importers' Sysmon for Linux
// recording and finds its connect, file create and delete in socket_events
// and file_events under the pid and process_key of its EID 1.
func TestSysmonLinuxActivityTables(t *testing.T) {
	e := engineOver(t, filepath.Join("..", "..", "telemetry", "importers", "testdata", "sysmon-linux", "activity.syslog"))
	keys := rows(t, e, "SELECT process_key FROM process_events WHERE pid = 4100 AND syscall = 'execve'")
	if len(keys) != 1 || keys[0] == "NULL" {
		t.Fatalf("curl's key: %v", keys)
	}
	for q, want := range map[string][]string{
		"SELECT action, remote_address, remote_port, protocol, pid, process_key, source FROM socket_events": {
			"connect|198.51.100.20|80|6|4100|" + keys[0] + "|sysmon_linux"},
		"SELECT action, target_path, pid, process_key FROM file_events ORDER BY time": {
			"create|/tmp/.x|4100|" + keys[0], "delete|/tmp/curl.tmp|4100|" + keys[0]},
	} {
		if got := rows(t, e, q); !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %q\nwant %q", q, got, want)
		}
	}
}

// engineOver imports one recording (skipping its malformed records) into a
// fresh store and opens the engine over the activity tables and
// process_events.
func engineOver(t *testing.T, path string) *sqlengine.Engine {
	t.Helper()
	r, _, err := importers.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var evs []telemetry.Event
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		var re *telemetry.RecordError
		if errors.As(err, &re) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	st := newStore(t)
	if _, err := st.Append(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	reg := tables.NewRegistry()
	if err := reg.Register(append(activity.Tables(st), process.Events(st, process.Options{}))...); err != nil {
		t.Fatal(err)
	}
	e, err := sqlengine.Open(reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}
