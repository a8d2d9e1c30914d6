package importers

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/quarry-sec/quarry/telemetry"
)

const auditActivityLog = "testdata/auditd/activity.log"

// TestAuditdActivity reads connects, file writes, deletes, renames and
// module loads from a raw audit log as network_connection, file_event,
// file_delete, file_rename and driver_load events with Sysmon's field
// names, and the broken SOCKADDR records as errors naming their lines.
func TestAuditdActivity(t *testing.T) {
	evs, errs, format := openAll(t, auditActivityLog)
	eq(t, "format", format, FormatAuditd)
	type row struct {
		serial   int64
		category string
		fields   string // name=value pairs of the Sysmon-like fields, in order
	}
	want := []row{
		{300, "process_creation", ""},
		{301, "network_connection", "Image=/usr/bin/bash Family=2 Initiated=true DestinationIsIpv6=false DestinationIp=198.51.100.7 DestinationPort=4444 Action=connect"},
		{302, "network_connection", "Image=/usr/bin/bash Family=10 Initiated=true DestinationIsIpv6=true DestinationIp=2001:db8::1 DestinationPort=443 Action=connect"},
		{304, "network_connection", "Image=/usr/bin/bash Family=1 SocketPath=/var/run/docker.sock Action=connect"},
		{305, "network_connection", "Image=/usr/bin/bash Family=1 SocketPath=@/tmp/.X11-unix/X0 Action=connect"},
		{306, "file_event", "Image=/usr/bin/bash TargetFilename=/etc/cron.d/evil Action=create"},
		{307, "file_event", "Image=/usr/bin/bash TargetFilename=/home/alice/notes.txt Action=write"},
		{309, "file_delete", "Image=/usr/bin/bash TargetFilename=/var/log/auth.log"},
		{310, "file_rename", "Image=/usr/bin/bash SourceFilename=/tmp/a TargetFilename=/tmp/.a"},
		{311, "process_creation", ""},
		{312, "driver_load", "Image=/usr/bin/kmod ImageLoaded=rk ModuleName=rk Action=finit_module Status=success"},
		{313, "driver_load", "Image=/usr/bin/kmod ImageLoaded= Action=init_module Status=failed: exit=-1"},
		{314, "network_connection", "Image=/usr/bin/python3.11 Family=2 SourceIsIpv6=false SourceIp=0.0.0.0 SourcePort=8080 Action=bind"},
		{315, "network_connection", "Image=/usr/bin/python3.11 Family=2 Initiated=false SourceIsIpv6=false SourceIp=203.0.113.5 SourcePort=51515 Action=accept"},
		{318, "network_connection", "Image=/usr/bin/bash Family=2 Initiated=true DestinationIsIpv6=false DestinationIp=192.0.2.10 DestinationPort=53 Action=connect"},
	}
	if len(evs) != len(want) {
		for _, e := range evs {
			t.Logf("%d %s %v", e.RecordID, e.Category, e.Fields.List())
		}
		t.Fatalf("got %d events, want %d", len(evs), len(want))
	}
	for i, w := range want {
		e := evs[i]
		eq(t, "serial", e.RecordID, w.serial)
		eq(t, "category", e.Category, w.category)
		eq(t, "source", e.Source, telemetry.SourceAuditd)
		if w.category == "process_creation" {
			continue
		}
		eq(t, "kind", e.Kind, telemetry.KindOther)
		var got []string
		for _, f := range e.Fields.List() {
			if f.Name == "type" { // the audit record's own fields follow
				break
			}
			got = append(got, f.Name+"="+f.Value)
		}
		eq(t, "fields of serial "+strconv.FormatInt(w.serial, 10), strings.Join(got, " "), w.fields)
	}

	// The acting process: pid, parent, ids, image, cwd, time.
	c := evs[1]
	eq(t, "connect PID", c.PID, 2001)
	eq(t, "connect PPID", c.PPID, 2000)
	eq(t, "connect UID", c.UID, 1000)
	eq(t, "connect AUID", c.AUID, 1000)
	eq(t, "connect Path", c.Path, "/usr/bin/bash")
	eq(t, "connect Comm", c.Comm, "bash")
	eq(t, "connect Time", c.Time.Format("2006-01-02T15:04:05.000"), "2023-11-14T22:15:01.120")
	eq(t, "connect Fields[key]", c.Field("key"), "net-connect")
	eq(t, "connect Fields[syscall]", c.Field("syscall"), "42")
	eq(t, "connect Fields[proctitle]", c.Field("proctitle"), "bash -i")
	eq(t, "create UID", evs[5].UID, 0)
	eq(t, "create Cwd", evs[5].Cwd, "/home/alice")
	eq(t, "module PID", evs[10].PID, 2002)

	if len(errs) != 2 {
		t.Fatalf("got errors %v, want the 2 broken SOCKADDR records", errs)
	}
	eq(t, "not-hex SOCKADDR line", errs[0].Line, 71)
	eq(t, "short SOCKADDR line", errs[1].Line, 74)
	if !strings.Contains(errs[0].Error(), "saddr") || !strings.Contains(errs[0].Error(), "SOCKADDR") {
		t.Errorf("error %q names neither the record nor the field", errs[0])
	}
}

func TestDecodeSockaddr(t *testing.T) {
	cases := []struct {
		saddr, want string
	}{
		{"0200115CC63364070000000000000000", "2 198.51.100.7:4444"},
		{"0A0001BB0000000020010DB8000000000000000000000001" + "00000000", "10 [2001:db8::1]:443"},
		{"0A000050" + "00000000" + "00000000000000000000FFFFC0000201" + "00000000", "10 [::ffff:192.0.2.1]:80"},
		{"01002F746D702F736F636B00000000", "1 /tmp/sock"},
		{"0100002F746D702F2E5831312D756E69782F5830", "1 @/tmp/.X11-unix/X0"},
		{"0100", "1 "},
		{"0002115CC6336407", "2 198.51.100.7:4444"}, // family in big-endian order
		{"10000000000000000000000000000000", "16 "}, // AF_NETLINK: no address
	}
	for _, c := range cases {
		sa, err := decodeSockaddr(c.saddr)
		if err != nil {
			t.Errorf("%s: %v", c.saddr, err)
			continue
		}
		got := strings.TrimSpace(strconv.Itoa(sa.family) + " " + sa.path)
		if sa.addr.IsValid() {
			got = strconv.Itoa(sa.family) + " " + netip.AddrPortFrom(sa.addr, uint16(sa.port)).String()
		}
		eq(t, c.saddr, got, strings.TrimSpace(c.want))
	}
	for _, bad := range []string{"", "0", "02", "0200115C", "0A0001BB00000000", "02001x5CC6336407", "zz"} {
		if _, err := decodeSockaddr(bad); err == nil {
			t.Errorf("%q decoded without error", bad)
		}
	}
}
