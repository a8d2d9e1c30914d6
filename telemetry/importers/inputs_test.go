package importers

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// copyTo writes data to dir/name, making directories.
func copyTo(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func gzipped(t *testing.T, data []byte) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func zipped(t *testing.T, members map[string][]byte) []byte {
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for name, data := range members {
		f, err := w.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(data)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func readBytes(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestInputsDirectory: a directory yields its recordings recursively (a
// gzip file, zip members, an EVTX named .dat, by content), and lists files
// of no known format with a description, binary ones without their bytes.
func TestInputsDirectory(t *testing.T) {
	dir := t.TempDir()
	audit := readBytes(t, "testdata/security-datasets/arp-cache.log")
	sysmon := readBytes(t, bitsadminExcerpt)
	evtx := readBytes(t, "testdata/sigma/wmic-terminate.evtx")
	copyTo(t, dir, "a/arp.log.gz", gzipped(t, audit))
	copyTo(t, dir, "a/b/sysmon.json", sysmon)
	copyTo(t, dir, "logs.bin", zipped(t, map[string][]byte{"inner/wmic.evtx": gzipped(t, evtx), "readme.txt": []byte("hello\n")}))
	copyTo(t, dir, "evtx.dat", evtx)
	copyTo(t, dir, "junk.bin", readBytes(t, "testdata/bad/junk.bin"))
	copyTo(t, dir, "notes.txt", readBytes(t, "testdata/bad/notes.txt"))

	ins, skips, err := Inputs(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	total := map[Format]int{}
	for _, in := range ins {
		names = append(names, strings.TrimPrefix(in.Name, dir+"/"))
		r, f, err := in.Open()
		if err != nil {
			t.Fatalf("%s: %v", in.Name, err)
		}
		evs, errs := readAll(t, r)
		r.Close()
		if len(errs) > 0 || len(evs) == 0 {
			t.Errorf("%s (%s): %d events, errors %v", in.Name, f, len(evs), errs)
		}
		total[f] += len(evs)
	}
	want := "a/arp.log.gz a/b/sysmon.json evtx.dat logs.bin!inner/wmic.evtx"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("inputs %q, want %q", got, want)
	}
	if total[FormatSysmonEVTX]%2 != 0 {
		t.Errorf("the zipped, gzipped EVTX and the plain one differ: %d events in all", total[FormatSysmonEVTX])
	}
	reasons := map[string]string{}
	for _, s := range skips {
		reasons[strings.TrimPrefix(s.Name, dir+"/")] = s.Reason
	}
	if r := reasons["junk.bin"]; r != "binary data of unknown format (300 bytes)" {
		t.Errorf("junk.bin: %q", r)
	}
	if r := reasons["notes.txt"]; !strings.Contains(r, "unknown telemetry format") {
		t.Errorf("notes.txt: %q", r)
	}
	if _, ok := reasons["logs.bin!readme.txt"]; !ok || len(skips) != 3 {
		t.Errorf("skipped %v, want junk.bin, notes.txt and logs.bin!readme.txt", reasons)
	}
}

// TestOpenGzipByMagic: a gzip file is read through whatever its name.
func TestOpenGzipByMagic(t *testing.T) {
	p := copyTo(t, t.TempDir(), "recording.json", gzipped(t, readBytes(t, bitsadminExcerpt)))
	evs, errs, f := openAll(t, p)
	plain, _, _ := openAll(t, bitsadminExcerpt)
	if f != FormatSysmonJSON || len(errs) > 0 || len(evs) != len(plain) {
		t.Fatalf("gzip: format %s, %d events (plain %d), errors %v", f, len(evs), len(plain), errs)
	}
}

// TestOpenBadInput: binary junk is described, not dumped; an EVTX whose
// header is damaged is ErrDamaged; one without records reads no event.
func TestOpenBadInput(t *testing.T) {
	_, _, err := Open("testdata/bad/junk.bin")
	if err == nil || !strings.Contains(err.Error(), "file testdata/bad/junk.bin: binary data of unknown format (300 bytes)") {
		t.Errorf("junk: %v", err)
	}
	_, _, err = Open("testdata/bad/damaged-header.evtx")
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "damaged-header.evtx") {
		t.Errorf("damaged header: %v, want ErrDamaged naming the file", err)
	}
	evs, errs, f := openAll(t, "testdata/bad/no-records.evtx")
	if f != FormatSysmonEVTX || len(evs) != 0 || len(errs) != 0 {
		t.Errorf("no records: %s, %d events, %v", f, len(evs), errs)
	}
}
