package importers

import (
	"strings"
	"testing"

	"github.com/quarry-sec/quarry/telemetry"
)

// streamEvents feeds records ("TYPE text" lines, the type as its number)
// to an AuditStream and returns the events.
func streamEvents(t *testing.T, records string) []telemetry.Event {
	t.Helper()
	s := NewAuditStream(WithHost("h"))
	var evs []telemetry.Event
	emit := func(e telemetry.Event) { evs = append(evs, e) }
	for _, line := range strings.Split(strings.TrimSpace(records), "\n") {
		typ, text, _ := strings.Cut(strings.TrimSpace(line), " ")
		n := map[string]uint16{"SYSCALL": 1300, "PATH": 1302, "CWD": 1307, "EOE": 1320, "OBJ_PID": 1318}[typ]
		if err := s.Record(n, text, emit); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
	}
	if s.Open() != 0 {
		t.Errorf("%d events left open", s.Open())
	}
	return evs
}

// TestAuditChmodAndPtrace: chmod and fchmodat become file_event chmod with
// the mode, ptrace attach becomes process_access as the eBPF collector
// names it, and a ptrace PEEK, a failed chmod are passed over.
func TestAuditChmodAndPtrace(t *testing.T) {
	evs := streamEvents(t, `
SYSCALL audit(1733450000.100:1): arch=c000003e syscall=90 success=yes exit=0 a0=5600 a1=9ed a2=0 a3=0 items=1 ppid=1 pid=700 uid=0 euid=0 comm="chmod" exe="/usr/bin/chmod"
CWD audit(1733450000.100:1): cwd="/tmp"
PATH audit(1733450000.100:1): item=0 name="x.sh" inode=3 nametype=NORMAL
EOE audit(1733450000.100:1):
SYSCALL audit(1733450000.200:2): arch=c000003e syscall=268 success=yes exit=0 a0=ffffff9c a1=5600 a2=1ed a3=0 items=1 ppid=1 pid=701 comm="chmod" exe="/usr/bin/chmod"
CWD audit(1733450000.200:2): cwd="/srv"
PATH audit(1733450000.200:2): item=0 name="run" inode=4 nametype=NORMAL
EOE audit(1733450000.200:2):
SYSCALL audit(1733450000.300:3): arch=c000003e syscall=90 success=no exit=-1 a0=5600 a1=1ff items=1 ppid=1 pid=702 comm="chmod" exe="/usr/bin/chmod"
PATH audit(1733450000.300:3): item=0 name="/etc/shadow" nametype=NORMAL
EOE audit(1733450000.300:3):
SYSCALL audit(1733450000.400:4): arch=c000003e syscall=101 success=yes exit=0 a0=10 a1=1f90 a2=0 a3=0 items=0 ppid=1 pid=703 comm="gdb" exe="/usr/bin/gdb"
OBJ_PID audit(1733450000.400:4): opid=8080 oauid=0 ouid=0 oses=1 ocomm="sshd"
EOE audit(1733450000.400:4):
SYSCALL audit(1733450000.500:5): arch=c000003e syscall=101 success=yes exit=0 a0=2 a1=1f90 a2=0 a3=0 items=0 ppid=1 pid=703 comm="gdb" exe="/usr/bin/gdb"
EOE audit(1733450000.500:5):
`)
	want := []struct{ category, fields string }{
		{"file_event", "Image=/usr/bin/chmod TargetFilename=/tmp/x.sh Action=chmod Mode=4755"},
		{"file_event", "Image=/usr/bin/chmod TargetFilename=/srv/run Action=chmod Mode=0755"},
		{"process_access", "SourceImage=/usr/bin/gdb SourceProcessId=703 TargetProcessId=8080 GrantedAccess=ptrace:attach"},
	}
	if len(evs) != len(want) {
		for _, e := range evs {
			t.Logf("%d %s %v", e.RecordID, e.Category, e.Fields.List())
		}
		t.Fatalf("got %d events, want %d", len(evs), len(want))
	}
	for i, w := range want {
		e := evs[i]
		var got []string
		for _, f := range e.Fields.List() {
			if f.Name == "type" {
				break
			}
			got = append(got, f.Name+"="+f.Value)
		}
		if e.Category != w.category || strings.Join(got, " ") != w.fields || e.Host != "h" || e.Kind != telemetry.KindOther {
			t.Errorf("event %d: %s %q host %q, want %s %q", i, e.Category, strings.Join(got, " "), e.Host, w.category, w.fields)
		}
	}
}
