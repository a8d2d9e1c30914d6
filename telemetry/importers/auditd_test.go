package importers

import (
	"slices"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/telemetry"
)

func TestAuditdRaw(t *testing.T) {
	evs, errs, format := openAll(t, "testdata/security-datasets/arp-cache.log")
	eq(t, "format", format, FormatAuditd)
	if len(evs) != 2 || len(errs) != 0 {
		t.Fatalf("got %d events, errors %v; want 2", len(evs), errs)
	}
	checkArp(t, evs[0])
	eq(t, "second Cmdline", evs[1].Cmdline, "grep -v ^?")
	eq(t, "second Fields[proctitle]", evs[1].Field("proctitle"), "grep -v ^?")
}

func TestAuditdJSON(t *testing.T) {
	evs, errs, format := openAll(t, "testdata/security-datasets/arp-cache.auditd.jsonl")
	eq(t, "format", format, FormatAuditdJSON)
	if len(evs) != 2 || len(errs) != 0 {
		t.Fatalf("got %d events, errors %v; want 2", len(evs), errs)
	}
	checkArp(t, evs[0])
}

// checkArp asserts the `arp -a` execve of the OTRF arp-cache recording.
func checkArp(t *testing.T, e telemetry.Event) {
	t.Helper()
	eq(t, "kind", e.Kind, telemetry.KindExec)
	eq(t, "source", e.Source, telemetry.SourceAuditd)
	eq(t, "category", e.Category, "process_creation")
	eq(t, "Time", e.Time, time.Date(2020, 11, 10, 7, 48, 16, 155e6, time.UTC))
	eq(t, "RecordID (serial)", e.RecordID, 92733)
	eq(t, "PID", e.PID, 1631)
	eq(t, "PPID", e.PPID, 29002)
	eq(t, "UID", e.UID, 1000)
	eq(t, "EUID", e.EUID, 1000)
	eq(t, "GID", e.GID, 1000)
	eq(t, "EGID", e.EGID, 1000)
	eq(t, "AUID", e.AUID, 1000)
	eq(t, "Comm", e.Comm, "arp")
	eq(t, "Path", e.Path, "/usr/sbin/arp")
	eq(t, "Cmdline", e.Cmdline, "arp -a")
	eq(t, "Cwd", e.Cwd, "/home/wardog")
	eq(t, "Host", e.Host, "")
	eq(t, "Username", e.Username, "")
	if !slices.Equal(e.Args, []string{"arp", "-a"}) {
		t.Errorf("Args = %q", e.Args)
	}
	eq(t, "Fields[a1]", e.Field("a1"), "-a")
	eq(t, "Fields[exe]", e.Field("exe"), "/usr/sbin/arp")
	eq(t, "Fields[syscall]", e.Field("syscall"), "59")
	eq(t, "Fields[cwd]", e.Field("cwd"), "/home/wardog")
	eq(t, "Fields[type]", e.Field("type"), "EXECVE")
}

// A hand-written log: node=, hex and split arguments, an EOE, a non-exec
// event, a failed execve, an execve with only a PROCTITLE, hex cwd and exe.
const auditSynthetic = `node=web1 type=SYSCALL msg=audit(1700000000.001:10): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=2 ppid=1 pid=100 auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm="sh" exe="/usr/bin/dash" key="exec"
node=web1 type=EXECVE msg=audit(1700000000.001:10): argc=4 a0="sh" a1="-c" a2=6563686F2022686920746865726522 a3_len=6 a3[0]="abc" a3[1]=646566
node=web1 type=CWD msg=audit(1700000000.001:10): cwd=2F746D702F6120646972
node=web1 type=PROCTITLE msg=audit(1700000000.001:10): proctitle=7368002D63
node=web1 type=EOE msg=audit(1700000000.001:10): 
type=SYSCALL msg=audit(1700000001.5:11): arch=c000003e syscall=2 success=yes exit=3 pid=100 ppid=1 uid=0 comm="cat" exe="/usr/bin/cat"
type=PATH msg=audit(1700000001.5:11): item=0 name="/etc/shadow"
type=SYSCALL msg=audit(1700000002.000:12): arch=c000003e syscall=59 success=no exit=-2 pid=101 ppid=1 uid=0 comm="sh" exe="/usr/bin/dash"
type=SYSCALL msg=audit(1700000003.250:13): arch=c000003e syscall=59 success=yes exit=0 pid=102 ppid=100 uid=1000 euid=1000 gid=1000 egid=1000 auid=1000 comm=6D7920746F6F6C exe=2F6F70742F6D7920746F6F6C
type=PROCTITLE msg=audit(1700000003.250:13): proctitle=2F6F70742F6D7920746F6F6C002D2D666C6167
`

func TestAuditdSynthetic(t *testing.T) {
	evs, errs, format := openAll(t, writeTemp(t, "audit.log", auditSynthetic))
	eq(t, "format", format, FormatAuditd)
	if len(evs) != 2 || len(errs) != 0 {
		t.Fatalf("got %d events, errors %v; want 2", len(evs), errs)
	}
	e := evs[0]
	eq(t, "Host (node=)", e.Host, "web1")
	eq(t, "AUID unset", e.AUID, telemetry.Unknown)
	eq(t, "Path", e.Path, "/usr/bin/dash")
	eq(t, "Cwd (hex)", e.Cwd, "/tmp/a dir")
	if want := []string{"sh", "-c", `echo "hi there"`, "abcdef"}; !slices.Equal(e.Args, want) {
		t.Errorf("Args = %q, want %q", e.Args, want)
	}
	eq(t, "Cmdline", e.Cmdline, `sh -c echo "hi there" abcdef`)
	eq(t, "Fields[a2]", e.Field("a2"), `echo "hi there"`)
	eq(t, "Fields[key]", e.Field("key"), "exec")
	eq(t, "Time", e.Time, time.Date(2023, 11, 14, 22, 13, 20, 1e6, time.UTC))

	p := evs[1]
	eq(t, "proctitle-only RecordID", p.RecordID, 13)
	eq(t, "proctitle-only Comm (hex)", p.Comm, "my tool")
	eq(t, "proctitle-only Path (hex)", p.Path, "/opt/my tool")
	if want := []string{"/opt/my tool", "--flag"}; !slices.Equal(p.Args, want) {
		t.Errorf("proctitle-only Args = %q, want %q", p.Args, want)
	}
	eq(t, "proctitle-only Time", p.Time, time.Date(2023, 11, 14, 22, 13, 23, 250e6, time.UTC))
}
