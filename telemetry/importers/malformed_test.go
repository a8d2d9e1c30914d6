package importers

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestMalformedFlatJSONLine(t *testing.T) {
	lines := strings.Split(strings.TrimSpace(readFile(t, bitsadminExcerpt)), "\n")
	broken := append(append(append([]string{}, lines[:3]...), `{"EventID":1,"Image":"C:\\x.exe",`, `{"Channel":"Security"}`, `not json at all`), lines[3:]...)
	path := writeTemp(t, "broken.json", strings.Join(broken, "\n")+"\n")
	evs, errs, _ := openAll(t, path)
	if len(evs) != len(lines) {
		t.Errorf("got %d events, want all %d good lines", len(evs), len(lines))
	}
	if len(errs) != 3 {
		t.Fatalf("got %d record errors, want 3: %v", len(errs), errs)
	}
	for i, want := range []int{4, 5, 6} {
		eq(t, "error line", errs[i].Line, want)
		eq(t, "error file", errs[i].File, path)
	}
	if !strings.Contains(errs[1].Error(), "no EventID") {
		t.Errorf("error for an object without EventID = %q", errs[1])
	}
	eq(t, "event after the broken lines keeps its line number", evs[3].RecordID, 7)
}

func TestMalformedNestedJSONObject(t *testing.T) {
	one := readFile(t, "testdata/sigma/wmic-terminate.json")
	bad := strings.Replace(one, `"Image": "C`, `"Image" "C`, 1)
	nOne := strings.Count(one, "\n")
	evs, errs, _ := openAll(t, writeTemp(t, "x.json", one+bad+one))
	if len(evs) != 2 || len(errs) != 1 {
		t.Fatalf("got %d events and errors %v, want 2 and 1", len(evs), errs)
	}
	eq(t, "error line (start of the broken object)", errs[0].Line, nOne+1)
	eq(t, "error record", errs[0].Record, 2)
}

func TestMalformedAuditdLine(t *testing.T) {
	log := strings.Split(readFile(t, "testdata/security-datasets/arp-cache.log"), "\n")
	mixed := append(append(append([]string{}, log[:6]...), "type=SYSCALL msg=audit(garbage", "hello"), log[6:]...)
	path := writeTemp(t, "a.log", strings.Join(mixed, "\n"))
	evs, errs, _ := openAll(t, path)
	if len(evs) != 2 || len(errs) != 2 {
		t.Fatalf("got %d events and errors %v, want 2 and 2", len(evs), errs)
	}
	eq(t, "first error line", errs[0].Line, 7)
	eq(t, "second error line", errs[1].Line, 8)
	eq(t, "event after the errors", evs[1].Comm, "grep")

	// A malformed record inside an event drops that event only.
	bad := strings.Replace(readFile(t, "testdata/security-datasets/arp-cache.log"), "argc=2", "argc=x", 1)
	evs, errs, _ = openAll(t, writeTemp(t, "b.log", bad))
	if len(evs) != 1 || len(errs) != 1 {
		t.Fatalf("got %d events and errors %v, want 1 and 1", len(evs), errs)
	}
	eq(t, "bad EXECVE line", errs[0].Line, 2)
	eq(t, "the other event", evs[0].Comm, "grep")
}

func TestMalformedAuditdJSONLine(t *testing.T) {
	lines := strings.Split(strings.TrimSpace(readFile(t, "testdata/security-datasets/arp-cache.auditd.jsonl")), "\n")
	path := writeTemp(t, "a.jsonl", lines[0]+"\n{\"audit_serial\": \"x\"\n"+lines[1]+"\n")
	evs, errs, _ := openAll(t, path)
	if len(evs) != 2 || len(errs) != 1 {
		t.Fatalf("got %d events and errors %v, want 2 and 1", len(evs), errs)
	}
	eq(t, "error line", errs[0].Line, 2)
}

func TestUnknownFormat(t *testing.T) {
	path := writeTemp(t, "notes.json", "hello, this is not telemetry\n")
	_, _, err := Open(path)
	if err == nil || !errors.Is(err, errUnknownFormat) {
		t.Fatalf("Open = %v, want an unknown-format error", err)
	}
	for _, want := range []string{path, `"hello, this is not telemetry\n"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if _, _, err := Open(writeTemp(t, "empty", "")); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty file: %v", err)
	}
	if _, _, err := Open(writeTemp(t, "bad.evtx", "ElfFile\x00short")); err == nil {
		t.Error("a truncated EVTX header opened without error")
	}
}

func TestDetect(t *testing.T) {
	cases := map[string]Format{
		"ElfFile\x00rest":                           FormatSysmonEVTX,
		"\xef\xbb\xbf{\"EventID\":1}\n":             FormatSysmonJSON,
		"  [\n {\"Event\": {}}]":                    FormatSysmonJSON,
		`{"audit_ts": 1.5, "audit_serial": 3}`:      FormatAuditdJSON,
		"type=EOE msg=audit(1.2:3): \n":             FormatAuditd,
		"node=h type=SYSCALL msg=audit(1.2:3): x=1": FormatAuditd,
	}
	for head, want := range cases {
		got, err := detect([]byte(head))
		if err != nil || got != want {
			t.Errorf("detect(%q) = %q, %v; want %q", head, got, err, want)
		}
	}
	if _, err := detect([]byte("PK\x03\x04zip")); err == nil {
		t.Error("a zip file was detected as telemetry")
	}
}

func TestWithFormatAndFormats(t *testing.T) {
	if _, _, err := Open(bitsadminExcerpt, WithFormat(FormatAuditd)); err != nil {
		t.Fatal(err)
	}
	_, errs, f := openAll(t, bitsadminExcerpt, WithFormat(FormatAuditd))
	eq(t, "forced format", f, FormatAuditd)
	if len(errs) == 0 {
		t.Error("JSON read as auditd gave no record errors")
	}
	if _, _, err := Open(bitsadminExcerpt, WithFormat("nope")); err == nil {
		t.Error("an unknown forced format opened")
	}
	for _, f := range Formats() {
		if f.Description() == "" {
			t.Errorf("format %q has no description", f)
		}
		if got, err := ParseFormat(string(f)); err != nil || got != f {
			t.Errorf("ParseFormat(%q) = %q, %v", f, got, err)
		}
	}
	if f, err := ParseFormat(""); err != nil || f != FormatAuto {
		t.Errorf("ParseFormat(\"\") = %q, %v", f, err)
	}
	if _, err := ParseFormat("csv"); err == nil {
		t.Error("ParseFormat(csv) succeeded")
	}
}

func TestDamagedEVTXChunk(t *testing.T) {
	b := []byte(readFile(t, "testdata/sigma/wmic-terminate.evtx"))
	b[0x1000+0x200+40] ^= 0xff // a byte inside the first chunk's records
	evs, errs, _ := openAll(t, writeTemp(t, "damaged.evtx", string(b)))
	if len(evs) != 0 || len(errs) != 1 || !strings.Contains(errs[0].Error(), "records checksum") {
		t.Fatalf("got %d events and errors %v; want the damaged chunk reported", len(evs), errs)
	}
}

// binXMLBuilder writes binary XML for a record that starts at offset 0x200
// of a chunk, names inline (their chunk offsets are where they stand).
type binXMLBuilder struct{ b []byte }

func (x *binXMLBuilder) u8(v ...byte) { x.b = append(x.b, v...) }
func (x *binXMLBuilder) u16(v uint16) { x.b = binary.LittleEndian.AppendUint16(x.b, v) }
func (x *binXMLBuilder) u32(v uint32) { x.b = binary.LittleEndian.AppendUint32(x.b, v) }

func (x *binXMLBuilder) open(name string) {
	x.u8(0x01)
	x.u16(0)
	x.u32(0)
	x.u32(uint32(0x200 + len(x.b) + 4)) // the name is here
	x.u32(0)
	x.u16(0)
	x.u16(uint16(len(name)))
	for _, c := range name {
		x.u16(uint16(c))
	}
	x.u16(0)
	x.u8(0x02) // close start element
}

// nested writes, for levels > 0, an instance of template 1 (defined by
// the outermost one) whose single BinXml argument is nested(levels-1); at 0,
// an instance whose argument is the string "x". Template 1 is
// <A>%1</A><B>%1</B>, so the parser expands this into a tree of 2^levels
// leaves whose subtrees are shared: a few nodes in memory.
func (x *binXMLBuilder) nested(levels int, define bool) {
	x.u8(0x0c, 0x01)
	x.u32(1)
	x.u32(0)
	x.u32(1)
	if define {
		x.b = append(x.b, make([]byte, 16)...) // GUID
		lenAt := len(x.b)
		x.u32(0)
		x.u8(0x0f, 1, 1, 0)
		for _, name := range []string{"A", "B"} {
			x.open(name)
			x.u8(0x0e)
			x.u16(0)
			x.u8(0x21)
			x.u8(0x04)
		}
		x.u8(0x00)
		binary.LittleEndian.PutUint32(x.b[lenAt:], uint32(len(x.b)-lenAt-4))
		x.u32(1)
	}
	if levels == 0 {
		x.u16(4)
		x.u16(0x01)
		x.u16('x')
		x.u16(0)
		return
	}
	descAt := len(x.b)
	x.u32(0)
	x.nested(levels-1, false)
	x.u8(0x00) // end of the argument's fragment
	binary.LittleEndian.PutUint16(x.b[descAt:], uint16(len(x.b)-descAt-4))
	binary.LittleEndian.PutUint16(x.b[descAt+2:], 0x21)
}

// TestEVTXSharedSubtrees: a record whose event tree shares its subtrees
// (2^30 leaves in a few hundred bytes, which the parser builds in as
// many nodes) is reported, not walked leaf by leaf.
func TestEVTXSharedSubtrees(t *testing.T) {
	file := []byte(readFile(t, "testdata/sigma/wmic-terminate.evtx"))
	x := &binXMLBuilder{}
	x.u8('*', '*', 0, 0)
	x.u32(0) // size, set below
	x.b = binary.LittleEndian.AppendUint64(x.b, 1)
	x.b = binary.LittleEndian.AppendUint64(x.b, 0)
	x.u8(0x0f, 1, 1, 0)
	x.open("Event")
	x.open("System")
	x.nested(30, true)
	x.u8(0x04, 0x04, 0x00)
	binary.LittleEndian.PutUint32(x.b[4:], uint32(len(x.b)))
	hdr := file[evtxChunkOffset+0x08 : evtxChunkOffset+0x34]
	if free := binary.LittleEndian.Uint32(hdr[0x28:]); len(x.b) > int(free)-0x200 {
		t.Fatalf("record of %d bytes does not fit", len(x.b))
	}
	data := patchEVTXChunk(file, hdr, 0, x.b)
	r, err := newEVTXReader(bytes.NewReader(data), io.NopCloser(nil), "shared.evtx", &config{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := r.Next()
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "shared.evtx: record 1") {
			t.Fatalf("Next: %v, want the record reported", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Next still walking the record after 20s")
	}
}
