//go:build linux

package audit

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/importers"
)

// datagram builds an audit record as the kernel sends it: a netlink header
// whose length leaves the header out (the kernel's quirk) when quirk is
// set, then the text.
func datagram(typ uint16, text string, quirk bool) []byte {
	b := make([]byte, nlmsgHdrLen+len(text))
	l := len(b)
	if quirk {
		l = len(text)
	}
	binary.NativeEndian.PutUint32(b, uint32(l))
	binary.NativeEndian.PutUint16(b[4:], typ)
	copy(b[nlmsgHdrLen:], text)
	return b
}

// The records of a connect (serial 101) and a rename (serial 102), the
// two events' records interleaved as CPUs finishing together send them.
var interleaved = []struct {
	typ  uint16
	text string
}{
	{1300, `audit(1733450000.120:101): arch=c000003e syscall=42 success=no exit=-115 a0=3 a1=7ffd a2=10 a3=0 items=0 ppid=1 pid=4242 auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=3 comm="curl" exe="/usr/bin/curl" key="quarry-live"`},
	{1300, `audit(1733450000.121:102): arch=c000003e syscall=316 success=yes exit=0 a0=ffffff9c a1=55d0 a2=ffffff9c a3=55e0 items=4 ppid=1 pid=4343 auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm="mv" exe="/usr/bin/mv" key="quarry-live"`},
	{1306, `audit(1733450000.120:101): saddr=02000050C0000207000000000000000000`},
	{1307, `audit(1733450000.121:102): cwd="/tmp/work"`},
	{1302, `audit(1733450000.121:102): item=0 name="/tmp/work" inode=1 dev=00:1f mode=040755 ouid=0 ogid=0 rdev=00:00 nametype=PARENT`},
	{1302, `audit(1733450000.121:102): item=1 name="/tmp/work" inode=1 dev=00:1f mode=040755 ouid=0 ogid=0 rdev=00:00 nametype=PARENT`},
	{1302, `audit(1733450000.121:102): item=2 name="a" inode=2 dev=00:1f mode=0100644 ouid=0 ogid=0 rdev=00:00 nametype=DELETE`},
	{1302, `audit(1733450000.121:102): item=3 name="b" inode=2 dev=00:1f mode=0100644 ouid=0 ogid=0 rdev=00:00 nametype=CREATE`},
	{1327, `audit(1733450000.120:101): proctitle=6375726C00687474703A2F2F3139322E302E322E37`},
	{1320, `audit(1733450000.121:102): `},
	{1320, `audit(1733450000.120:101): `},
}

func TestDecodeAndGroup(t *testing.T) {
	s := importers.NewAuditStream(importers.WithHost("h"))
	var got []telemetry.Event
	emit := func(e telemetry.Event) { got = append(got, e) }
	for i, r := range interleaved {
		typ, text, err := decodeRecord(datagram(r.typ, r.text+"\x00", i%2 == 0))
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if typ != r.typ || text != r.text && text != strings.TrimRight(r.text, " ") {
			t.Fatalf("record %d: decoded %d %q", i, typ, text)
		}
		if err := s.Record(typ, text, emit); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	if len(got) != 2 || s.Open() != 0 {
		t.Fatalf("%d events, %d open; want 2 and 0: %+v", len(got), s.Open(), got)
	}
	rename, connect := got[0], got[1]
	if rename.Category != "file_rename" || rename.PID != 4343 || rename.Host != "h" ||
		rename.Field("SourceFilename") != "/tmp/work/a" || rename.Field("TargetFilename") != "/tmp/work/b" {
		t.Errorf("rename: %s pid %d host %q %v", rename.Category, rename.PID, rename.Host, rename.Fields.List())
	}
	if connect.Category != "network_connection" || connect.PID != 4242 || connect.Source != telemetry.SourceAuditd ||
		connect.Field("DestinationIp") != "192.0.2.7" || connect.Field("DestinationPort") != "80" ||
		connect.Field("key") != RuleKey || connect.Field("proctitle") != "curl http://192.0.2.7" ||
		connect.Time.UnixMilli() != 1733450000120 || connect.RecordID != 101 {
		t.Errorf("connect: %s pid %d %v %v", connect.Category, connect.PID, connect.Time, connect.Fields.List())
	}
}

func TestGroupWithoutEOE(t *testing.T) {
	s := importers.NewAuditStream()
	var got []telemetry.Event
	emit := func(e telemetry.Event) { got = append(got, e) }
	// Records of types Quarry does not read (CONFIG_CHANGE, USER_*) never
	// get an EOE either: they open no event.
	for i := range 300 {
		s.Record(1305, fmt.Sprintf("audit(1733450001.000:%d): op=set", 5000+i), emit)
	}
	if s.Open() != 0 {
		t.Fatalf("%d events open for records of unread types", s.Open())
	}
	// A connect whose EOE was lost, then 256 other events' lone records:
	// the connect is pushed out (finished with what it has) when the
	// 257th event opens.
	s.Record(1300, interleaved[0].text, emit)
	s.Record(1306, interleaved[2].text, emit)
	for i := range 256 {
		s.Record(1307, fmt.Sprintf(`audit(1733450001.000:%d): cwd="/"`, 1000+i), emit)
	}
	if len(got) != 1 || got[0].Category != "network_connection" {
		t.Fatalf("got %d events: %+v", len(got), got)
	}
	s.Flush(emit)
	if s.Open() != 0 || len(got) != 1 {
		t.Errorf("after Flush: %d open, %d events", s.Open(), len(got))
	}
}

func TestBadRecordSpoilsItsGroup(t *testing.T) {
	s := importers.NewAuditStream()
	var got []telemetry.Event
	emit := func(e telemetry.Event) { got = append(got, e) }
	s.Record(1300, interleaved[0].text, emit)
	if err := s.Record(1306, `audit(1733450000.120:101): saddr=0200zz`, emit); err == nil {
		t.Error("a bad saddr was accepted")
	}
	s.Record(1320, `audit(1733450000.120:101): `, emit)
	if len(got) != 0 {
		t.Errorf("a spoilt group made events: %+v", got)
	}
	for _, bad := range []string{"", "audit(", "audit(1.0:x): a=b", "noaudit", "audit(1.0:5"} {
		if err := s.Record(1300, bad, emit); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestSplitMessages(t *testing.T) {
	// An acknowledgement: NLMSG_ERROR with errno 0, then the request's header.
	ack := make([]byte, nlmsgHdrLen+4+nlmsgHdrLen)
	binary.NativeEndian.PutUint32(ack, uint32(len(ack)))
	binary.NativeEndian.PutUint16(ack[4:], unix.NLMSG_ERROR)
	binary.NativeEndian.PutUint32(ack[8:], 7)
	msgs, err := splitMessages(ack)
	if err != nil || len(msgs) != 1 || msgs[0].typ != unix.NLMSG_ERROR || msgs[0].seq != 7 || errno(msgs[0].data) != nil {
		t.Fatalf("ack: %+v %v", msgs, err)
	}
	binary.NativeEndian.PutUint32(ack[nlmsgHdrLen:], uint32(0xffffffff-unix.EEXIST+1))
	if msgs, _ := splitMessages(ack); errno(msgs[0].data) != unix.EEXIST {
		t.Errorf("errno = %v", errno(msgs[0].data))
	}
	for _, bad := range [][]byte{nil, make([]byte, 5), make([]byte, 17)} {
		if _, _, err := decodeRecord(bad); err == nil {
			t.Errorf("%d bytes decoded", len(bad))
		}
	}
}

func TestRuleEncoding(t *testing.T) {
	rules := rulesFor(Captures)
	if len(rules) == 0 {
		t.Fatal("no rules")
	}
	n := 0
	for _, r := range rules {
		b, ok := r.marshal(unix.AUDIT_ARCH_X86_64, 99)
		if !ok {
			continue
		}
		n++
		if ruleKey(b) != RuleKey {
			t.Errorf("%v: key %q", r.syscalls, ruleKey(b))
		}
		ne := binary.NativeEndian
		if ne.Uint32(b) != unix.AUDIT_FILTER_EXIT || ne.Uint32(b[4:]) != unix.AUDIT_ALWAYS {
			t.Errorf("%v: flags %d action %d", r.syscalls, ne.Uint32(b), ne.Uint32(b[4:]))
		}
	}
	// connect is 42 on x86-64: bit 10 of mask word 1.
	b, _ := rulesFor([]string{CaptureNetwork})[0].marshal(unix.AUDIT_ARCH_X86_64, 99)
	if binary.NativeEndian.Uint32(b[12+4:])&(1<<10) == 0 {
		t.Error("connect's bit is not set")
	}
	if _, ok := (rule{syscalls: []string{"socketcall"}}).marshal(unix.AUDIT_ARCH_X86_64, 1); ok {
		t.Error("a rule of no x86-64 syscall encoded")
	}
	if n < 4 || ruleKey(b[:20]) != "" {
		t.Errorf("%d rules", n)
	}
}

// FuzzDecodeRecords feeds datagrams (the input split at 0xff bytes)
// through the decoding and the grouping: bad input is an error or nothing,
// never a panic.
func FuzzDecodeRecords(f *testing.F) {
	var all [][]byte
	for i, r := range interleaved {
		d := datagram(r.typ, r.text, i%2 == 1)
		all = append(all, d)
		f.Add(d)
	}
	f.Add(bytes.Join(all, []byte{0xff}))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := importers.NewAuditStream()
		emit := func(telemetry.Event) {}
		for _, d := range bytes.Split(data, []byte{0xff}) {
			if typ, text, err := decodeRecord(d); err == nil && typ >= recordTypeMin {
				_ = s.Record(typ, text, emit)
			}
			splitMessages(d)
		}
		s.Flush(emit)
	})
}
