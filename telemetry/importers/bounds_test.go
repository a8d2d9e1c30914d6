package importers

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/quarry-sec/quarry/telemetry"
)

// writeHuge writes a file of three lines: a normal event, one whose
// CommandLine is size bytes of 'A' (written in pieces: the test never holds
// it), and another normal event. pretty spreads each object over lines.
func writeHuge(t testing.TB, size int, pretty bool) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "huge.json")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	sep := ""
	if pretty {
		sep = "\n  "
	}
	event := func(id int, cmd func()) {
		fmt.Fprintf(w, `{%s"EventID":1,%s"Channel":"Microsoft-Windows-Sysmon/Operational",%s"Hostname":"h%d",%s"Image":"C:\\x.exe",%s"CommandLine":"`, sep, sep, sep, id, sep, sep)
		cmd()
		fmt.Fprintf(w, `",%s"ParentImage":"C:\\p.exe",%s"@timestamp":"2021-01-01T00:00:00Z"}`+"\n", sep, sep)
	}
	event(1, func() { w.WriteString("small") })
	chunk := strings.Repeat("A", 1<<16)
	event(2, func() {
		for n := 0; n < size; n += len(chunk) {
			w.WriteString(chunk)
		}
		w.WriteString(`\u00e9\"end`)
	})
	event(3, func() { w.WriteString("small") })
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestHugeCommandLineBounded: a 50 MB command line is stored cut to
// MaxCommandLine and flagged, the events around it are untouched, and
// reading the file allocates a bounded amount (the line is never held).
func TestHugeCommandLineBounded(t *testing.T) {
	for _, pretty := range []bool{false, true} {
		t.Run(fmt.Sprintf("pretty=%v", pretty), func(t *testing.T) {
			p := writeHuge(t, 50<<20, pretty)
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			evs, errs, _ := openAll(t, p)
			runtime.ReadMemStats(&after)
			if len(errs) != 0 || len(evs) != 3 {
				t.Fatalf("got %d events, errors %v; want 3 events", len(evs), errs)
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("reading 50 MB allocated %d KiB in all (peak heap %d KiB)", alloc>>10, after.HeapInuse>>10)
			if alloc > 8<<20 {
				t.Errorf("reading allocated %d bytes, want under 8 MiB: the long line was held", alloc)
			}
			e := evs[1]
			if len(e.Cmdline) != MaxCommandLine || !e.Truncated {
				t.Errorf("command line %d bytes, truncated %v; want %d and true", len(e.Cmdline), e.Truncated, MaxCommandLine)
			}
			if v := e.Field("CommandLine"); len(v) != MaxCommandLine {
				t.Errorf("CommandLine field %d bytes, want %d", len(v), MaxCommandLine)
			}
			if e.ParentPath != `C:\p.exe` || e.Host != "h2" {
				t.Errorf("fields after the long value lost: parent %q host %q", e.ParentPath, e.Host)
			}
			for _, i := range []int{0, 2} {
				if evs[i].Cmdline != "small" || evs[i].Truncated {
					t.Errorf("event %d: command line %q truncated %v", i, evs[i].Cmdline, evs[i].Truncated)
				}
			}
		})
	}
}

// TestRecordOverHardBound: a line over MaxRecord even after its strings are
// cut (many values) is one record error naming its line; the next line is
// read.
func TestRecordOverHardBound(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"EventID":1,"Channel":"Microsoft-Windows-Sysmon/Operational","Image":"a","CommandLine":"x","@timestamp":"2021-01-01T00:00:00Z"}` + "\n")
	b.WriteString(`{"EventID":1`)
	for i := 0; b.Len() < MaxRecord+(1<<20); i++ {
		fmt.Fprintf(&b, `,"f%d":"v"`, i)
	}
	b.WriteString("}\n")
	b.WriteString(`{"EventID":1,"Channel":"Microsoft-Windows-Sysmon/Operational","Image":"b","CommandLine":"y","@timestamp":"2021-01-01T00:00:00Z"}` + "\n")
	p := writeTemp(t, "many.json", b.String())
	evs, errs, _ := openAll(t, p)
	if len(evs) != 2 || evs[1].Path != "b" {
		t.Fatalf("got %d events, want the 2 around the oversized line", len(evs))
	}
	if len(errs) != 1 || errs[0].Line != 2 || !strings.Contains(errs[0].Error(), "too long") {
		t.Fatalf("errors %v, want one 'too long' at line 2", errs)
	}
}

func TestBound(t *testing.T) {
	e := telemetry.Event{Cmdline: strings.Repeat("é", MaxCommandLine), Path: "short",
		Args: []string{strings.Repeat("a", MaxCommandLine-10), strings.Repeat("b", 100), "c"}}
	e.Fields.Set("ScriptBlockText", strings.Repeat("s", MaxScriptText+1))
	e.Fields.Set("TargetFilename", strings.Repeat("t", MaxValue+1))
	e.Fields.Set("Short", "ok")
	bound(&e)
	if !e.Truncated || len(e.Cmdline) > MaxCommandLine || !utf8.ValidString(e.Cmdline) || len(e.Cmdline) < MaxCommandLine-1 {
		t.Errorf("cmdline %d bytes valid %v truncated %v", len(e.Cmdline), utf8.ValidString(e.Cmdline), e.Truncated)
	}
	if n := len(strings.Join(e.Args, " ")); n > MaxCommandLine || len(e.Args) != 2 {
		t.Errorf("args %d long in %d", n, len(e.Args))
	}
	if len(e.Field("ScriptBlockText")) != MaxScriptText || len(e.Field("TargetFilename")) != MaxValue || e.Field("Short") != "ok" {
		t.Errorf("fields not cut to their bounds")
	}
	small := telemetry.Event{Cmdline: "a b", Args: []string{"a", "b"}}
	bound(&small)
	if small.Truncated || small.Cmdline != "a b" || len(small.Args) != 2 {
		t.Errorf("a small event was changed: %+v", small)
	}
}

// TestLongFieldsAboveMaxValue: boundFields looks up a field's own bound
// only for values over MaxValue, so no field may be bound below it.
func TestLongFieldsAboveMaxValue(t *testing.T) {
	for name, n := range longFields {
		if n < MaxValue {
			t.Errorf("%s bound to %d, below MaxValue %d", name, n, MaxValue)
		}
	}
}
