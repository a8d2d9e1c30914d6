package importers

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/crc32"
	"io"
	"math"
	"os"
	"strings"
	"testing"

	"www.velocidex.com/golang/evtx"

	"github.com/quarry-sec/quarry/telemetry"
)

// drain reads a reader built over data to the end, failing on anything but
// events, record errors and io.EOF, and on a reader that never ends.
func drain(t *testing.T, r telemetry.Reader, data []byte) {
	t.Helper()
	for i := 0; i <= len(data)+10; i++ {
		_, err := r.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		var re *telemetry.RecordError
		if err != nil && !errors.As(err, &re) {
			t.Fatalf("Next: %v is not a *telemetry.RecordError", err)
		}
	}
	t.Fatalf("reader over %d bytes did not end", len(data))
}

func bufReader(data []byte) *bufio.Reader {
	return bufio.NewReaderSize(bytes.NewReader(data), 64)
}

func seed(f *testing.F, paths ...string) {
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func FuzzSysmonJSON(f *testing.F) {
	seed(f, bitsadminExcerpt, "testdata/sigma/wmic-terminate.json")
	f.Add([]byte("[{\"Event\":{\"System\":{\"EventID\":{\"#text\":1}}}}, 1]\n"))
	f.Add([]byte("{\"EventID\":\"\\ud800\\u0041\",\"a\":[{\"b\":\"\\\"\"}]}\n{\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newWinJSONReader(io.NopCloser(nil), bufReader(data), "fuzz", &config{})
		drain(t, r, data)
	})
}

func FuzzAuditd(f *testing.F) {
	seed(f, "testdata/security-datasets/arp-cache.log", auditActivityLog)
	f.Add([]byte(auditSynthetic))
	f.Add([]byte("type=EXECVE msg=audit(1.1:1): argc=99999999 a70000=\"x\" a1[3]=zz\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newAuditdReader(io.NopCloser(nil), bufReader(data), "fuzz", &config{})
		drain(t, r, data)
	})
}

// FuzzDecodeSockaddr: any saddr decodes or fails with an error, and an
// address decoded has the family it claims.
func FuzzDecodeSockaddr(f *testing.F) {
	for _, s := range []string{"0200115CC63364070000000000000000", "0A0001BB0000000020010DB800000000000000000000000100000000",
		"01002F746D702F736F636B00", "0100002F78", "0002115CC6336407", "0200"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sa, err := decodeSockaddr(s)
		if err != nil {
			return
		}
		switch {
		case sa.family == afInet && !sa.addr.Is4(), sa.family == afInet6 && !sa.addr.Is6():
			t.Fatalf("%q: family %d with address %v", s, sa.family, sa.addr)
		case sa.family != afInet && sa.family != afInet6 && sa.addr.IsValid():
			t.Fatalf("%q: family %d has an IP address", s, sa.family)
		case sa.port < 0 || sa.port > 65535:
			t.Fatalf("%q: port %d", s, sa.port)
		}
	})
}

func FuzzAuditdJSON(f *testing.F) {
	seed(f, "testdata/security-datasets/arp-cache.auditd.jsonl")
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newAuditdJSONReader(io.NopCloser(nil), bufReader(data), "fuzz", &config{})
		drain(t, r, data)
	})
}

func FuzzSysmonLinuxSyslog(f *testing.F) {
	f.Add([]byte(sysmonLinuxSyslog))
	f.Add([]byte("<Event><System><EventID>1</EventID></System><EventData><Data Name=\"a\">&#x110000;&amp</Data><Data Name=\"b\"/>"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newSyslogXMLReader(io.NopCloser(nil), bufReader(data), "fuzz", &config{})
		drain(t, r, data)
	})
}

func FuzzEVTX(f *testing.F) {
	seed(f, "testdata/sigma/wmic-terminate.evtx")
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := newEVTXReader(bytes.NewReader(data), io.NopCloser(nil), "fuzz", &config{})
		if err != nil {
			return
		}
		for i := 0; i < 1<<16; i++ {
			if _, err := r.Next(); errors.Is(err, io.EOF) {
				return
			}
		}
		t.Fatal("EVTX reader did not end")
	})
}

func FuzzDetect(f *testing.F) {
	seed(f, bitsadminExcerpt, "testdata/security-datasets/arp-cache.log")
	f.Fuzz(func(t *testing.T, data []byte) {
		if fm, err := detect(data); err == nil && fm.Description() == "" {
			t.Fatalf("detected %q, which has no description", fm)
		}
	})
}

// FuzzStringCapper: cutting long strings out of valid JSON leaves valid
// JSON, and text with no long string is unchanged.
func FuzzStringCapper(f *testing.F) {
	f.Add([]byte(`{"a":"x\u00e9\"\\y","b":[1,"é"]}`), 3)
	f.Add([]byte(`["\ud83d\ude00abc"]`), 1)
	f.Fuzz(func(t *testing.T, data []byte, extra int) {
		if !json.Valid(data) || extra < 0 || extra > 1<<12 {
			return
		}
		// pad every string past the bound so that cutting happens
		long := bytes.ReplaceAll(data, []byte(`"`), []byte(`"`+strings.Repeat("a", maxJSONString)))
		if !json.Valid(long) {
			long = data
		}
		var s stringCapper
		out := s.appendKept(nil, long)
		if !json.Valid(out) {
			t.Fatalf("capped text is not JSON: %q", out[:min(len(out), 200)])
		}
		s.reset()
		if got := s.appendKept(nil, data); len(data) < maxJSONString && !bytes.Equal(got, data) {
			t.Fatalf("short text changed: %q -> %q", data, got)
		}
	})
}

// FuzzLineReader: a JSON-mode line reader over any bytes ends, counts
// lines, and never returns a line over the bound.
func FuzzLineReader(f *testing.F) {
	f.Add([]byte("{\"a\":\"" + strings.Repeat("x", 200) + "\"}\r\n\n{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		l := lineReader{r: bufReader(data), json: true}
		for i := 0; i <= len(data)+1; i++ {
			b, err := l.next()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil && !errors.Is(err, errLineTooLong) {
				t.Fatal(err)
			}
			if len(b) > maxLineSize {
				t.Fatalf("line of %d bytes", len(b))
			}
		}
		t.Fatal("line reader did not end")
	})
}

// FuzzOpenStream: any bytes, compressed or not, open as a recording or fail
// with an error, and a reader over them ends.
func FuzzOpenStream(f *testing.F) {
	seed(f, "testdata/bad/junk.bin", "testdata/bad/notes.txt", "testdata/security-datasets/arp-cache.log")
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write([]byte("{\"EventID\":1,\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"CommandLine\":\"x\"}\n"))
	w.Close()
	f.Add(gz.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		cr := &countingReader{r: bytes.NewReader(data)}
		r, _, err := openStream("fuzz", int64(len(data)), cr, cr, io.NopCloser(nil), &config{})
		if err != nil {
			return
		}
		defer r.Close()
		for i := 0; i < 1<<16; i++ {
			if _, err := r.Next(); errors.Is(err, io.EOF) {
				return
			} else if err != nil {
				var re *telemetry.RecordError
				if !errors.As(err, &re) {
					return // a read error ends the stream
				}
			}
		}
		t.Fatal("reader did not end")
	})
}

// FuzzCAPEReport: any bytes read as a sandbox report (CAPE or Cuckoo) either
// fail to open with an error or give events and end; a run is there at
// the end of every report that opened and read through.
func FuzzCAPEReport(f *testing.F) {
	seed(f, capeReport, cuckooReport)
	f.Add([]byte(`{"info": {"id": 1, "machine": "m"}, "behavior": {"processes": [{"process_id": 1, "calls": [{"api": "connect", "arguments": [{"name": "ip", "value": "1.2.3.4"}]}]}], "processtree": [{"pid": 1, "children": [{"pid": 2, "ppid": 1}]}]}}`))
	f.Add([]byte(`{"behavior": {"processes": [{"pid": 3, "ppid": 3, "calls": null}, {"pid": 3, "ppid": 3}]}, "ttps": ["T1055", {"ttp": 5}], "signatures": [{"name": "x", "ttp": {"T1000": 1}, "marks": [{"pid": "3"}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d := &config{}
		r, err := newSandboxReader(bytes.NewReader(data), io.NopCloser(nil), "fuzz", d)
		if err != nil {
			return
		}
		for i := 0; ; i++ {
			if i > 4*len(data)+10 {
				t.Fatalf("reader over %d bytes did not end", len(data))
			}
			_, err := r.Next()
			if errors.Is(err, io.EOF) {
				if r.report == nil {
					t.Fatal("no run at the end")
				}
				r.report.Finish(nil, nil, nil, nil)
				return
			}
			var re *telemetry.RecordError
			if err != nil && !errors.As(err, &re) {
				if _, err2 := r.Next(); !errors.Is(err2, io.EOF) {
					t.Fatalf("after %v: %v, want io.EOF", err, err2)
				}
				return
			}
		}
	})
}

// FuzzJSONStringOnePass checks the one-pass string paths (appendStr,
// skipStr) against str and appendUnescaped: same contents, same end, and
// no answer where they report an error.
func FuzzJSONStringOnePass(f *testing.F) {
	for _, s := range []string{`"plain"`, `"C:\\Windows\\cmd.exe" x`, `"a\"b\\"`, `"\u00e9\ud83d\ude00"`,
		`"\ud83d"`, `"\ud83dx"`, `"bad \q"`, `"unterminated`, `"trailing \`, `"\u12"`, `"0123456789abcdef\"0123456789"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if !strings.HasPrefix(in, `"`) {
			in = `"` + in
		}
		old := jscanner{b: []byte(in)}
		raw, esc, oldErr := old.str()
		var want []byte
		if oldErr == nil {
			want = append([]byte("pre"), raw...)
			if esc {
				want, oldErr = appendUnescaped([]byte("pre"), raw)
			}
		}
		one := jscanner{b: []byte(in)}
		got, ok := one.appendStr([]byte("pre"))
		switch {
		case ok && oldErr != nil:
			t.Fatalf("%q: appendStr = %q, but str/appendUnescaped fail: %v", in, got, oldErr)
		case ok && (!bytes.Equal(got, want) || one.i != old.i):
			t.Fatalf("%q: appendStr = %q (end %d), want %q (end %d)", in, got, one.i, want, old.i)
		case !ok && (one.i != 0 || string(got) != "pre"):
			t.Fatalf("%q: appendStr failed but moved to %d or appended %q", in, one.i, got)
		case !ok && oldErr == nil:
			t.Fatalf("%q: appendStr failed, str/appendUnescaped give %q", in, want)
		}
		sk := jscanner{b: []byte(in)}
		_, _, strErr := (&jscanner{b: []byte(in)}).str()
		if done := sk.skipStr(); done != (strErr == nil) || (done && sk.i != old.i) {
			t.Fatalf("%q: skipStr = %v end %d; str err %v end %d", in, done, sk.i, strErr, old.i)
		}
	})
}

// evtxChunkOffset is where the first chunk starts in the seed files (the
// file header block is 4 KiB).
const evtxChunkOffset = 0x1000

// patchEVTXChunk returns a copy of an EVTX file whose first chunk has had
// hdr written over its header from offset 0x08 (record numbers, record IDs,
// header size, last record and free-space offsets) and patch written into
// its record area (0x200 up to the free-space offset) at off, wrapped into
// that area, with the records checksum at 0x34 (when the free-space offset
// still lies in the chunk) and then the header checksum at 0x7c recomputed,
// so that checkChunk passes it on to the parser.
func patchEVTXChunk(file []byte, hdr []byte, off uint32, patch []byte) []byte {
	data := bytes.Clone(file)
	c := data[evtxChunkOffset : evtxChunkOffset+evtx.EVTX_CHUNK_SIZE]
	if free := binary.LittleEndian.Uint32(c[0x30:]); free > evtx.EVTX_CHUNK_HEADER_SIZE && free <= evtx.EVTX_CHUNK_SIZE {
		area := c[evtx.EVTX_CHUNK_HEADER_SIZE:free]
		copy(area[off%uint32(len(area)):], patch)
	}
	copy(c[0x08:0x34], hdr)
	if free := binary.LittleEndian.Uint32(c[0x30:]); free >= evtx.EVTX_CHUNK_HEADER_SIZE && free <= evtx.EVTX_CHUNK_SIZE {
		binary.LittleEndian.PutUint32(c[0x34:], crc32.ChecksumIEEE(c[evtx.EVTX_CHUNK_HEADER_SIZE:free]))
	}
	h := crc32.NewIEEE()
	h.Write(c[:0x78])
	h.Write(c[0x80:evtx.EVTX_CHUNK_HEADER_SIZE])
	binary.LittleEndian.PutUint32(c[0x7c:], h.Sum32())
	return data
}

// drainEVTX reads an EVTX reader over data to the end: nothing may panic,
// Next must reach io.EOF within a bound, and every error must be a
// *telemetry.RecordError naming the file and the chunk or the record.
func drainEVTX(t *testing.T, data []byte) {
	t.Helper()
	const path = "fuzz.evtx"
	r, err := newEVTXReader(bytes.NewReader(data), io.NopCloser(nil), path, &config{})
	if err != nil {
		t.Fatalf("the file header is intact, but: %v", err)
	}
	for i := 0; i < 1<<16; i++ {
		_, err := r.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err == nil {
			continue
		}
		var re *telemetry.RecordError
		if !errors.As(err, &re) {
			t.Fatalf("Next: %v is not a *telemetry.RecordError", err)
		}
		if msg := err.Error(); re.File != path || !strings.HasPrefix(msg, path+":") ||
			!(re.Record > 0 || strings.Contains(re.Reason, "chunk ")) {
			t.Fatalf("error names neither the file and the chunk nor the record: %q", msg)
		}
	}
	t.Fatal("EVTX reader did not end")
}

// evtxSeeds are the EVTX files with records to mutate; the first chunk of
// each starts at evtxChunkOffset.
var evtxSeeds = []string{"testdata/sigma/wmic-terminate.evtx"}

func readEVTXSeeds(f *testing.F) [][]byte {
	var files [][]byte
	for _, p := range evtxSeeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		if len(b) < evtxChunkOffset+evtx.EVTX_CHUNK_SIZE {
			f.Fatalf("%s: no whole first chunk", p)
		}
		files = append(files, b)
	}
	return files
}

// FuzzEVTXChunkRecords reaches the binary-XML record parser past the
// checksums: it overwrites bytes of the first chunk's record area of a seed
// file, recomputes the records and header checksums, and reads the file
// through. No panic may escape, the reader must end, and every error must
// name the file and the chunk or record (see drainEVTX).
func FuzzEVTXChunkRecords(f *testing.F) {
	files := readEVTXSeeds(f)
	for i, src := range files {
		f.Add(uint8(i), uint32(0), []byte{})
		// record ID 0 and a damaged event: the error must still say where
		rec := bytes.Clone(src[evtxChunkOffset+evtx.EVTX_CHUNK_HEADER_SIZE:][:0x101])
		clear(rec[8:16])
		rec[0x100] = 'z'
		f.Add(uint8(i), uint32(0), rec)
		f.Add(uint8(i), uint32(0x18), []byte{0x0c, 0x01, 0xff, 0xff, 0xff, 0xff})
		f.Add(uint8(i), uint32(0x30), []byte{0xff, 0xff, 0xff, 0x7f})
	}
	f.Fuzz(func(t *testing.T, file uint8, off uint32, patch []byte) {
		src := files[int(file)%len(files)]
		hdr := src[evtxChunkOffset+0x08 : evtxChunkOffset+0x34]
		drainEVTX(t, patchEVTXChunk(src, hdr, off, patch))
	})
}

// FuzzEVTXChunkHeader is FuzzEVTXChunkRecords that may also rewrite the
// first chunk's header fields from 0x08 to 0x34 (first and last record
// numbers and IDs, header size, last record and free-space offsets), the
// checksums recomputed, so that only checkChunk's range checks and Next's
// record-range guard stand between those fields and the parser. The
// invariant is drainEVTX's.
func FuzzEVTXChunkHeader(f *testing.F) {
	files := readEVTXSeeds(f)
	for i, src := range files {
		hdr := bytes.Clone(src[evtxChunkOffset+0x08 : evtxChunkOffset+0x34])
		f.Add(uint8(i), hdr, uint32(0), []byte{})
		big := bytes.Clone(hdr)
		binary.LittleEndian.PutUint64(big[0x08:], 1<<40) // last record number
		f.Add(uint8(i), big, uint32(0x08), []byte{0, 0, 0, 0})
		// the last record number the largest there is, and a record of size
		// 0: the parser's record loop wraps and never ends
		wrap := bytes.Clone(hdr)
		binary.LittleEndian.PutUint64(wrap[0x00:], math.MaxUint64-1)
		binary.LittleEndian.PutUint64(wrap[0x08:], math.MaxUint64)
		f.Add(uint8(i), wrap, uint32(0x04), []byte{0, 0, 0, 0})
	}
	f.Fuzz(func(t *testing.T, file uint8, hdr []byte, off uint32, patch []byte) {
		drainEVTX(t, patchEVTXChunk(files[int(file)%len(files)], hdr, off, patch))
	})
}
