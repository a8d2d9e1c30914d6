package importers

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/quarry-sec/quarry/telemetry"
)

func writeLines(t *testing.T, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "rec.json")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const (
	sec4688 = `{"EventID":4688,"Channel":"Security","Hostname":"%s","TimeCreated":"%s","NewProcessName":"C:\\a.exe","NewProcessId":"0x10","ProcessId":"0x4"}`
	sysmon1 = `{"EventID":1,"Channel":"Microsoft-Windows-Sysmon/Operational","Hostname":"%s","TimeCreated":"%s","UtcTime":"%s","Image":"C:\\a.exe","ProcessId":"16","ProcessGuid":"{a}"}`
)

func f(format string, args ...any) string { return fmt.Sprintf(format, args...) }

func readAllWithReader(t *testing.T, path string) ([]telemetry.Event, []*telemetry.RecordError, telemetry.Reader) {
	t.Helper()
	r, _, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	evs, errs := readAll(t, r)
	return evs, errs, r
}

// A file whose Sysmon records show TimeCreated 4 h behind UtcTime has its
// records without UtcTime corrected, those before the first Sysmon record
// too, on that host only; the reader says so once.
func TestClockOffsetCorrected(t *testing.T) {
	path := writeLines(t,
		f(sec4688, "WS5", "2020-10-22T02:57:59.856Z"),
		f(sysmon1, "WS5", "2020-10-22T02:57:59.857Z", "2020-10-22 06:57:59.855"),
		f(sec4688, "WS5", "2020-10-22T03:00:00.000Z"),
		f(sec4688, "OTHER", "2020-10-22T03:00:00.000Z"),
	)
	evs, errs, r := readAllWithReader(t, path)
	if len(errs) > 0 || len(evs) != 4 {
		t.Fatalf("%d events, %v", len(evs), errs)
	}
	want := []time.Time{
		time.Date(2020, 10, 22, 6, 57, 59, 856e6, time.UTC),
		time.Date(2020, 10, 22, 6, 57, 59, 855e6, time.UTC),
		time.Date(2020, 10, 22, 7, 0, 0, 0, time.UTC),
		time.Date(2020, 10, 22, 3, 0, 0, 0, time.UTC),
	}
	for i, w := range want {
		if !evs[i].Time.Equal(w) {
			t.Errorf("event %d: %v, want %v", i, evs[i].Time, w)
		}
	}
	n := Notices(r)
	if len(n) != 1 || !strings.Contains(n[0], "4h0m behind UtcTime on host WS5; corrected (2 record") {
		t.Fatalf("notices %q", n)
	}
}

// Times that agree, or differ by other than whole quarter hours, are left
// alone.
func TestClockOffsetNotApplied(t *testing.T) {
	for _, utc := range []string{"2020-10-22 02:57:59.855", "2020-10-22 03:05:00.000"} {
		path := writeLines(t,
			f(sysmon1, "WS5", "2020-10-22T02:57:59.857Z", utc),
			f(sec4688, "WS5", "2020-10-22T03:00:00.000Z"),
		)
		evs, errs, r := readAllWithReader(t, path)
		if len(errs) > 0 || len(evs) != 2 {
			t.Fatalf("%d events, %v", len(evs), errs)
		}
		if w := time.Date(2020, 10, 22, 3, 0, 0, 0, time.UTC); !evs[1].Time.Equal(w) {
			t.Errorf("UtcTime %s: 4688 at %v, want %v", utc, evs[1].Time, w)
		}
		if n := Notices(r); len(n) != 0 {
			t.Errorf("notices %q", n)
		}
	}
}

// TestClockFixKeepsHostCopies: the host a reader hands over may point into
// its buffer, which the next record overwrites; the offsets and counts learnt
// stay under the host's own name (the benchmark corpus grew the offsets map
// without bound when they did not).
func TestClockFixKeepsHostCopies(t *testing.T) {
	buf := []byte("host-a")
	shared := unsafe.String(&buf[0], len(buf))
	c := newClockFix()
	utc := time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)
	if !c.learn(shared, utc, utc.Add(-time.Hour)) {
		t.Fatal("a whole hour apart: want an offset learnt")
	}
	e := telemetry.Event{Host: shared, Time: utc}
	c.fix(&e)
	c.fix(&e)
	copy(buf, "host-b")
	if d, ok := c.offsets["host-a"]; !ok || d != time.Hour {
		t.Fatalf("offsets = %v, want host-a: 1h", c.offsets)
	}
	if n := c.corrected["host-a"]; n == nil || *n != 2 {
		t.Fatalf("corrected[host-a] = %v, want 2", n)
	}
	if _, ok := c.offsets["host-b"]; ok {
		t.Fatal("host-b learnt from a reused buffer")
	}
}

// A gzip-compressed recording, or one in a zip archive, is corrected as the
// plain file is: records before the first Sysmon one included (they kept
// TimeCreated when only a plain file was read ahead).
func TestClockOffsetCorrectedCompressed(t *testing.T) {
	lines := []string{
		f(sec4688, "WS5", "2020-10-22T02:57:59.856Z"),
		f(sysmon1, "WS5", "2020-10-22T02:57:59.857Z", "2020-10-22 06:57:59.855"),
	}
	body := []byte(strings.Join(lines, "\n") + "\n")
	dir := t.TempDir()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(body)
	zw.Close()
	gzPath := filepath.Join(dir, "rec.json.gz")
	if err := os.WriteFile(gzPath, gz.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	var zb bytes.Buffer
	za := zip.NewWriter(&zb)
	w, _ := za.Create("rec.json")
	w.Write(body)
	za.Close()
	zipPath := filepath.Join(dir, "rec.zip")
	if err := os.WriteFile(zipPath, zb.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	want := time.Date(2020, 10, 22, 6, 57, 59, 856e6, time.UTC)
	check := func(name string, r telemetry.Reader) {
		t.Helper()
		defer r.Close()
		evs, errs := readAll(t, r)
		if len(errs) > 0 || len(evs) != 2 {
			t.Fatalf("%s: %d events, %v", name, len(evs), errs)
		}
		if !evs[0].Time.Equal(want) {
			t.Errorf("%s: 4688 before the Sysmon record at %v, want %v", name, evs[0].Time, want)
		}
		if n := Notices(r); len(n) != 1 || !strings.Contains(n[0], "corrected (1 record") {
			t.Errorf("%s: notices %q", name, n)
		}
	}
	r, _, err := Open(gzPath)
	if err != nil {
		t.Fatal(err)
	}
	check("gzip", r)
	ins, _, err := Inputs(zipPath)
	if err != nil || len(ins) != 1 {
		t.Fatalf("zip inputs %v, %v", ins, err)
	}
	r, _, err = ins[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	check("zip", r)
}
