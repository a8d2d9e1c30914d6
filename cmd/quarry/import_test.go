package main

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const importersTestdata = "../../telemetry/importers/testdata/"

// writeFile writes data under dir, making directories.
func writeFile(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestImportDirectory: a directory imports its recordings (recursively, a
// gzip one by its magic), lists what it passed over (binary junk described
// by size, not dumped), warns about a damaged or empty EVTX, and names the
// hosts used, this machine's name for records without one.
func TestImportDirectory(t *testing.T) {
	src := t.TempDir()
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write(mustRead(t, importersTestdata+"security-datasets/arp-cache.log"))
	w.Close()
	writeFile(t, src, "linux/arp", gz.Bytes())
	writeFile(t, src, "win/bits.json", mustRead(t, importersTestdata+"security-datasets/bitsadmin-excerpt.json"))
	for _, f := range []string{"junk.bin", "notes.txt", "damaged-header.evtx", "no-records.evtx"} {
		writeFile(t, src, "bad/"+f, mustRead(t, importersTestdata+"bad/"+f))
	}
	dir := t.TempDir()
	out, errs, code := quarry(t, dir, "", "import", "--no-detect", src)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{
		"skipped " + filepath.Join(src, "bad/junk.bin") + ": binary data of unknown format (300 bytes)",
		"skipped " + filepath.Join(src, "bad/notes.txt") + ": unknown telemetry format",
		"warning: importers: " + filepath.Join(src, "bad/damaged-header.evtx") + ": EVTX header: damaged recording",
		"warning: " + filepath.Join(src, "bad/no-records.evtx") + ": no events read",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	if strings.Contains(errs, "\x00") || strings.Contains(errs, `\x`) {
		t.Errorf("stderr dumps binary bytes:\n%s", errs)
	}
	for _, want := range []string{"imported 3 file(s)", "2 file(s) of no known format passed over",
		"hosts (as the recordings name them): ", "WORKSTATION5", "name no host: read as "} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q", want)
		}
	}
	q, qerrs, code := quarry(t, dir, "", "query", "--format", "csv", "SELECT count(*) AS n FROM process_events WHERE path = '/usr/sbin/arp'")
	if code != 0 || q != "n\n1\n" {
		t.Errorf("the gzip-compressed auditd log was not imported: %s %s", q, qerrs)
	}
	if t.Failed() {
		t.Logf("stdout:\n%s\nstderr:\n%s", out, errs)
	}

	// --host names every event's host, and the summary says so.
	out, _, code = quarry(t, t.TempDir(), "", "import", "--no-detect", "--host", "lab9", filepath.Join(src, "linux"))
	if code != 0 || !strings.Contains(out, "hosts (as given by --host): lab9 (2)") || strings.Contains(out, "name no host") {
		t.Errorf("--host: exit %d\n%s", code, out)
	}

	// Nothing read at all: a non-zero exit.
	_, errs, code = quarry(t, t.TempDir(), "", "import", "--no-detect", filepath.Join(src, "bad"))
	if code != 1 || !strings.Contains(errs, "no events read") {
		t.Errorf("only bad files: exit %d, want 1\n%s", code, errs)
	}
	_, errs, code = quarry(t, t.TempDir(), "", "scan", "--no-builtin", "--rules", "testdata/rules/bits_custom.yml", filepath.Join(src, "bad"))
	if code != 1 || !strings.Contains(errs, "no events read") || !strings.Contains(errs, "binary data of unknown format (300 bytes)") {
		t.Errorf("scan of only bad files: exit %d, want 1\n%s", code, errs)
	}
}

// A file under a directory that cannot be read (a damaged zip archive, an
// unreadable file) fails the import and the scan, named as not imported,
// as it does when given by itself; it was counted among the files "of no
// known format passed over" and the command exited 0.
func TestImportDirectoryUnreadableFile(t *testing.T) {
	src := t.TempDir()
	writeFile(t, src, "win/bits.json", mustRead(t, importersTestdata+"security-datasets/bitsadmin-excerpt.json"))
	writeFile(t, src, "win/damaged.zip", []byte("PK\x03\x04 not really a zip archive"))
	unreadable := ""
	if os.Geteuid() != 0 {
		writeFile(t, src, "win/locked.json", mustRead(t, importersTestdata+"security-datasets/bitsadmin-excerpt.json"))
		unreadable = filepath.Join(src, "win/locked.json")
		if err := os.Chmod(unreadable, 0); err != nil {
			t.Fatal(err)
		}
	}
	for _, cmd := range []string{"import", "scan"} {
		out, errs, code := quarry(t, t.TempDir(), "", cmd, "--no-builtin", "--rules", "testdata/rules/bits_custom.yml", src)
		if code != 1 || !strings.Contains(errs, filepath.Join(src, "win/damaged.zip")) || !strings.Contains(errs, "not ") {
			t.Errorf("%s: exit %d, want 1 naming the damaged archive\n%s\n%s", cmd, code, out, errs)
		}
		if unreadable != "" && !strings.Contains(errs, unreadable) {
			t.Errorf("%s: the unreadable file is not named\n%s", cmd, errs)
		}
		if strings.Contains(out, "no known format passed over") {
			t.Errorf("%s: a file that could not be read counted as of no known format\n%s", cmd, out)
		}
	}
}
