//go:build linux

package ebpf

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/quarry-sec/quarry/telemetry"
)

func TestDetailMatchesGeneratedType(t *testing.T) {
	if got := unsafe.Sizeof(processDetail{}); got != detailSize {
		t.Fatalf("sizeof(struct detail) = %d, detailSize = %d", got, detailSize)
	}
	var d processDetail
	for name, want := range map[string]uintptr{
		"Arg": 4, "Family": 8, "Sport": 10, "Dport": 12, "Path1Len": 14, "Path2Len": 16, "PayloadLen": 18,
		"Mode": 20, "TargetPid": 24, "OldIds": 28, "NewIds": 44, "Path3Len": 60, "Path4Len": 62, "Ret": 64,
		"OldCaps": 72, "NewCaps": 88, "Saddr": 104, "Daddr": 120,
	} {
		f, _ := reflect.TypeOf(d).FieldByName(name)
		if f.Offset != want {
			t.Errorf("offset of %s = %d, parseDetail reads %d", name, f.Offset, want)
		}
	}
}

// activityRecord builds an activity record: header, detail, then exe,
// path1..path4 and payload.
type activityRecord struct {
	kind, flags, action, arg uint32
	family, sport, dport     uint16
	mode, target             uint32
	oldIDs, newIDs           [4]uint32
	ret                      int64
	saddr, daddr             []byte
	exe, p1, p2, p3, p4, pay string
}

func (r activityRecord) bytes() []byte {
	b := make([]byte, headerSize+detailSize)
	ne := binary.NativeEndian
	ne.PutUint64(b[0:], 2e9)
	ne.PutUint32(b[24:], r.kind)
	ne.PutUint32(b[28:], 42)
	ne.PutUint32(b[32:], 7)
	ne.PutUint32(b[52:], ^uint32(0))
	ne.PutUint32(b[60:], r.flags)
	ne.PutUint16(b[66:], uint16(len(r.exe)))
	copy(b[72:], "curl")
	d := b[headerSize:]
	ne.PutUint32(d[0:], r.action)
	ne.PutUint32(d[4:], r.arg)
	ne.PutUint16(d[8:], r.family)
	ne.PutUint16(d[10:], r.sport)
	ne.PutUint16(d[12:], r.dport)
	ne.PutUint16(d[14:], uint16(len(r.p1)))
	ne.PutUint16(d[16:], uint16(len(r.p2)))
	ne.PutUint16(d[18:], uint16(len(r.pay)))
	ne.PutUint32(d[20:], r.mode)
	ne.PutUint32(d[24:], r.target)
	for i := range 4 {
		ne.PutUint32(d[28+4*i:], r.oldIDs[i])
		ne.PutUint32(d[44+4*i:], r.newIDs[i])
	}
	ne.PutUint16(d[60:], uint16(len(r.p3)))
	ne.PutUint16(d[62:], uint16(len(r.p4)))
	ne.PutUint64(d[64:], uint64(r.ret))
	copy(d[104:], r.saddr)
	copy(d[120:], r.daddr)
	return append(b, r.exe+r.p1+r.p2+r.p3+r.p4+r.pay...)
}

func fieldsOf(ev telemetry.Event) map[string]string {
	m := map[string]string{}
	for k, v := range ev.Fields.All() {
		m[k] = v
	}
	return m
}

func TestDecodeActivity(t *testing.T) {
	exe := "curl\x00bin\x00usr\x00"
	v6 := append(make([]byte, 15), 1)
	for _, tc := range []struct {
		name     string
		rec      activityRecord
		category string
		want     map[string]string
	}{
		{"connect v4", activityRecord{kind: recordNet, action: 1, arg: 6, family: afInet, sport: 40000, dport: 443,
			saddr: []byte{127, 0, 0, 1}, daddr: []byte{10, 0, 0, 9}, exe: exe}, "network_connection",
			map[string]string{"Image": "/usr/bin/curl", "Protocol": "tcp", "Initiated": "true", "SourceIsIpv6": "false",
				"SourceIp": "127.0.0.1", "SourcePort": "40000", "DestinationIsIpv6": "false", "DestinationIp": "10.0.0.9",
				"DestinationPort": "443", "Action": "connect"}},
		{"listen v6", activityRecord{kind: recordNet, action: 4, arg: 262, family: afInet6, sport: 8080, saddr: v6, exe: exe},
			"network_connection", map[string]string{"Image": "/usr/bin/curl", "Protocol": "tcp", "SourceIsIpv6": "true",
				"SourceIp": "::1", "SourcePort": "8080", "Action": "listen"}},
		{"create", activityRecord{kind: recordFile, action: 1, exe: exe, p1: "x.txt\x00tmp\x00"}, "file_event",
			map[string]string{"Image": "/usr/bin/curl", "TargetFilename": "/tmp/x.txt", "Action": "create"}},
		{"chmod relative", activityRecord{kind: recordFile, action: 3, mode: 0o104755, exe: exe, flags: flagPath1Raw | flagBase1,
			p1: "../s\x00", p2: "w\x00home\x00"}, "file_event",
			map[string]string{"Image": "/usr/bin/curl", "TargetFilename": "/home/s", "Action": "chmod", "Mode": "4755"}},
		{"rename", activityRecord{kind: recordFile, action: 5, exe: exe, flags: flagPath1Raw | flagBase1 | flagBase3,
			p1: "a\x00", p2: "tmp\x00", p3: "/etc/b\x00", p4: ""}, "file_rename",
			map[string]string{"Image": "/usr/bin/curl", "SourceFilename": "/tmp/a", "TargetFilename": "/etc/b"}},
		{"delete", activityRecord{kind: recordFile, action: 4, exe: exe, flags: flagPath1Raw | flagBase1, p1: "/tmp/x\x00"},
			"file_delete", map[string]string{"Image": "/usr/bin/curl", "TargetFilename": "/tmp/x"}},
		{"ptrace", activityRecord{kind: recordAccess, action: 1, arg: 4, target: 99, exe: exe}, "process_access",
			map[string]string{"SourceImage": "/usr/bin/curl", "SourceProcessId": "42", "TargetProcessId": "99",
				"GrantedAccess": "ptrace:poketext"}},
		{"finit_module", activityRecord{kind: recordModule, action: 1, ret: -1, exe: exe, p1: "x.ko\x00tmp\x00"}, "driver_load",
			map[string]string{"Image": "/usr/bin/curl", "ImageLoaded": "/tmp/x.ko", "Action": "finit_module", "Status": "failed: EPERM"}},
		{"memfd", activityRecord{kind: recordMemfd, action: 1, exe: exe, flags: flagPath1Raw, p1: "payload\x00"}, "image_load",
			map[string]string{"Image": "/usr/bin/curl", "ImageLoaded": "memfd:payload", "Action": "memfd_create"}},
		{"setresgid", activityRecord{kind: recordPriv, action: opSetresgid, exe: exe, oldIDs: [4]uint32{1000, 1000, 1000, 1000},
			newIDs: [4]uint32{0, 0, 0, 0}}, "privilege_change",
			map[string]string{"Image": "/usr/bin/curl", "Action": "setresgid", "OldGid": "1000", "NewGid": "0", "OldEgid": "1000",
				"NewEgid": "0", "OldSgid": "1000", "NewSgid": "0", "OldFsgid": "1000", "NewFsgid": "0",
				"OldCapEffective": "0x0", "NewCapEffective": "0x0", "OldCapPermitted": "0x0", "NewCapPermitted": "0x0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := decodeRecord(tc.rec.bytes(), clock{}, "h")
			if err != nil {
				t.Fatal(err)
			}
			ev := a.ev
			if ev.Kind != telemetry.KindOther || ev.Category != tc.category || ev.PID != 42 || ev.PPID != 7 ||
				ev.Path != "/usr/bin/curl" || ev.Comm != "curl" || ev.Host != "h" || ev.Source != telemetry.SourceEBPF {
				t.Errorf("event %+v", ev)
			}
			if got := fieldsOf(ev); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("fields\n got %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestDecodeActivityRejectsMalformed(t *testing.T) {
	good := activityRecord{kind: recordFile, action: 1, exe: "x\x00", p1: "y\x00"}.bytes()
	for name, raw := range map[string][]byte{
		"no detail":         good[:headerSize+10],
		"short variable":    good[:len(good)-1],
		"unknown kind":      activityRecord{kind: 77}.bytes(),
		"unknown action":    activityRecord{kind: recordNet, action: 9, family: afInet}.bytes(),
		"unknown family":    activityRecord{kind: recordNet, action: 1, family: 3}.bytes(),
		"unknown file op":   activityRecord{kind: recordFile, action: 0}.bytes(),
		"unknown priv op":   activityRecord{kind: recordPriv, action: 2}.bytes(),
		"unknown dns dir":   activityRecord{kind: recordDNS, action: 3, family: afInet}.bytes(),
		"unknown access":    activityRecord{kind: recordAccess, action: 3}.bytes(),
		"unknown module op": activityRecord{kind: recordModule, action: 3}.bytes(),
	} {
		if a, err := decodeRecord(raw, clock{}, ""); err == nil {
			t.Errorf("%s: decoded as %+v", name, a.ev)
		}
	}
}

func dnsQuery(t testing.TB, id uint16, name string) []byte {
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: id, RecursionDesired: true})
	b.StartQuestions()
	b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(name), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET})
	msg, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func dnsAnswer(t testing.TB, id uint16, name string, rcode dnsmessage.RCode) []byte {
	n := dnsmessage.MustNewName(name)
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: id, Response: true, RCode: rcode})
	b.StartQuestions()
	b.Question(dnsmessage.Question{Name: n, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET})
	b.StartAnswers()
	if rcode == dnsmessage.RCodeSuccess {
		b.CNAMEResource(dnsmessage.ResourceHeader{Name: n, Type: dnsmessage.TypeCNAME, Class: dnsmessage.ClassINET},
			dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName("edge.example.")})
		b.AResource(dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName("edge.example."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET},
			dnsmessage.AResource{A: [4]byte{192, 0, 2, 7}})
	}
	msg, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func dnsActivity(pid int64, msg []byte, sent bool) activity {
	ev := telemetry.NewEvent(telemetry.KindOther, telemetry.SourceEBPF)
	ev.PID, ev.Category = pid, "dns_query"
	ev.Fields.Append("Image", "/usr/bin/curl")
	return activity{ev: ev, dns: msg, dnsSent: sent}
}

func TestDNSTrackerPairsQueryAndAnswer(t *testing.T) {
	tr := newDNSTracker(DefaultDNSWindow)
	if out := tr.add(dnsActivity(5, dnsQuery(t, 1, "www.example."), true)); len(out) != 0 {
		t.Fatalf("a query alone gave %d events", len(out))
	}
	// Another process's answer with the same id does not complete it.
	if out := tr.add(dnsActivity(6, dnsAnswer(t, 1, "www.example.", dnsmessage.RCodeNameError), false)); len(out) != 1 ||
		out[0].PID != 6 || out[0].Field("QueryStatus") != "NXDOMAIN" {
		t.Fatalf("unpaired answer: %+v", out)
	}
	out := tr.add(dnsActivity(5, dnsAnswer(t, 1, "www.example.", dnsmessage.RCodeSuccess), false))
	if len(out) != 1 {
		t.Fatalf("%d events", len(out))
	}
	want := map[string]string{"Image": "/usr/bin/curl", "QueryName": "www.example", "QueryType": "A",
		"QueryStatus": "NOERROR", "QueryResults": "CNAME: edge.example.;A: 192.0.2.7"}
	if got := fieldsOf(out[0]); !reflect.DeepEqual(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	// An unanswered query is reported when the window closes.
	tr.add(dnsActivity(5, dnsQuery(t, 2, "lost.example."), true))
	if out := tr.expire(out[0].Time, false); len(out) != 0 {
		t.Errorf("expired early: %v", out)
	}
	out = tr.expire(out[0].Time.Add(time.Hour), false)
	if len(out) != 1 || out[0].Field("QueryStatus") != StatusTimeout || out[0].Field("QueryName") != "lost.example" {
		t.Errorf("expire: %+v", out)
	}
}

func TestParseDNSCutShort(t *testing.T) {
	msg := dnsAnswer(t, 9, "www.example.", dnsmessage.RCodeSuccess)
	m, err := parseDNS(msg[:len(msg)-3]) // the A record cut
	if err != nil {
		t.Fatal(err)
	}
	if !m.partial || len(m.results) != 1 || !strings.HasPrefix(m.results[0], "CNAME") {
		t.Errorf("%+v", m)
	}
	if _, err := parseDNS(msg[:5]); err == nil {
		t.Error("a 5-byte message parsed")
	}
	if _, err := parseDNS(msg[:12]); err == nil {
		t.Error("a message without its question parsed")
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(record(recordExec, "/bin/true\x00", "true\x00bin\x00", "", "/bin/true\x00", 0))
	f.Add(activityRecord{kind: recordNet, action: 1, family: afInet, exe: "x\x00"}.bytes())
	f.Add(activityRecord{kind: recordFile, action: 5, flags: flagPath1Raw | flagBase1 | flagBase3, p1: "a\x00", p3: "b"}.bytes())
	f.Add(activityRecord{kind: recordDNS, action: 2, family: afInet6, pay: "\x00\x01"}.bytes())
	f.Fuzz(func(t *testing.T, raw []byte) {
		a, err := decodeRecord(raw, clock{}, "")
		if err == nil && a.ev.Kind == telemetry.KindOther && a.ev.Category == "" {
			t.Errorf("activity event without a category: %+v", a.ev)
		}
	})
}

func FuzzParseDNS(f *testing.F) {
	f.Add(dnsQuery(f, 1, "a.example."))
	f.Add(dnsAnswer(f, 2, "b.example.", dnsmessage.RCodeSuccess))
	f.Add(dnsAnswer(f, 3, "c.example.", dnsmessage.RCodeNameError))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseDNS(b)
		if err == nil && m.name == "" {
			t.Errorf("parsed without a name: %+v", m)
		}
		tr := newDNSTracker(DefaultDNSWindow)
		for _, ev := range tr.add(dnsActivity(1, b, !m.response)) {
			if ev.Field("QueryStatus") == "" {
				t.Errorf("event without a status: %v", ev.Fields.List())
			}
		}
	})
}

func TestTCPDNSMessage(t *testing.T) {
	msg := dnsQuery(t, 7, "tcp.example.")
	n := uint32(len(msg))
	prefixed := append([]byte{byte(n >> 8), byte(n)}, msg...)
	for _, c := range []struct {
		name       string
		b          []byte
		total      uint32
		want       []byte
		lengthOnly bool
	}{
		{"prefix and message in one call", prefixed, n + 2, msg, false},
		{"prefix and message cut short", prefixed[:10], n + 2, prefixed[2:10], false},
		{"message alone (prefix moved by its own call)", msg, n, msg, false},
		{"prefix alone", prefixed[:2], 2, nil, true},
	} {
		got, only := tcpDNSMessage(c.b, c.total)
		if !bytes.Equal(got, c.want) || only != c.lengthOnly {
			t.Errorf("%s: got %x, %v; want %x, %v", c.name, got, only, c.want, c.lengthOnly)
		}
	}
}
