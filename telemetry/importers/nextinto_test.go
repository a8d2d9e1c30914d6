package importers

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/quarry-sec/quarry/telemetry"
)

// TestNextIntoMatchesNext checks that NextInto, reusing one event, its
// Fields storage and its value buffer, yields the same events and errors as
// Next, for flat and nested JSON, line and stream mode, with a malformed
// record in between. Each event is compared before the next call (which
// overwrites it); a deep copy taken then must also survive the next call.
func TestNextIntoMatchesNext(t *testing.T) {
	bad := writeTemp(t, "bad.json", readFile(t, bitsadminExcerpt)+"{\"EventID\": \n"+readFile(t, bitsadminExcerpt))
	for _, path := range []string{bitsadminExcerpt, "testdata/sigma/wmic-terminate.json", bad} {
		want, wantErrs, _ := openAll(t, path)
		r, _, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := r.(IntoReader); !ok {
			t.Fatalf("%s: the reader is not an IntoReader", path)
		}
		var ev telemetry.Event
		var got []telemetry.Event
		nerr := 0
		for {
			err := NextInto(r, &ev)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				nerr++
				continue
			}
			i := len(got)
			if i >= len(want) {
				t.Fatalf("%s: NextInto read more than Next's %d events", path, len(want))
			}
			// NextInto hands its value buffer over (ValueArena);
			// Next's events are copies without one.
			if !sameEvent(ev, want[i]) {
				t.Fatalf("%s: event %d differs:\nNextInto %+v\nNext     %+v", path, i, ev, want[i])
			}
			got = append(got, *ev.Clone())
		}
		r.Close()
		if nerr != len(wantErrs) || len(got) != len(want) {
			t.Fatalf("%s: NextInto read %d events and %d errors, Next %d and %d", path, len(got), nerr, len(want), len(wantErrs))
		}
		for i := range want {
			if !sameEvent(got[i], want[i]) {
				t.Fatalf("%s: copy of event %d changed:\nNextInto %+v\nNext     %+v", path, i, got[i], want[i])
			}
		}
		if len(want) == 0 {
			t.Fatalf("%s: no events", path)
		}
	}
}

// TestNextIntoAllocations checks that decoding into a reused event
// allocates nothing for its values once warmed up (they share the reader's
// buffer). These are Security 4688 events, whose DOMAIN\user is composed
// (one string for some of them): fewer than half an allocation per event.
func TestNextIntoAllocations(t *testing.T) {
	path := writeTemp(t, "many.json", strings.Repeat(readFile(t, bitsadminExcerpt), 200))
	evs, _, _ := openAll(t, path)
	r, _, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var ev telemetry.Event
	if err := NextInto(r, &ev); err != nil { // warm up: map and buffers grow
		t.Fatal(err)
	}
	n := 0
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	for NextInto(r, &ev) == nil {
		n++
	}
	runtime.ReadMemStats(&ms1)
	if n != len(evs)-1 {
		t.Fatalf("read %d events, want %d", n, len(evs)-1)
	}
	per := float64(ms1.Mallocs-ms0.Mallocs) / float64(n)
	t.Logf("%d events, %.2f allocations per event", n, per)
	if per >= 0.5 {
		t.Errorf("%.2f allocations per event, want < 0.5", per)
	}
}

// TestRepeatedKeys: a record naming a field twice keeps the later value,
// once, through Next and NextInto; so does a record of many fields (past
// the repeat detector's table).
func TestRepeatedKeys(t *testing.T) {
	line := `{"EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational", "Computer": "h", "UtcTime": "2026-11-27 10:00:00.000", "Image": "C:\\a.exe", "CommandLine": "a", "Image": "C:\\b.exe"}`
	var many strings.Builder
	many.WriteString(`{"EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational", "Computer": "h", "Image": "C:\\a.exe"`)
	for i := range 60 {
		fmt.Fprintf(&many, `, "F%d": "%d"`, i, i)
	}
	many.WriteString(`, "Image": "C:\\b.exe"}`)
	path := writeTemp(t, "dup.json", line+"\n"+many.String()+"\n"+line+"\n")
	for _, into := range []bool{false, true} {
		r, _, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		var ev telemetry.Event
		for i := 0; ; i++ {
			if into {
				err = NextInto(r, &ev)
			} else {
				ev, err = r.Next()
			}
			if errors.Is(err, io.EOF) {
				if i != 3 {
					t.Fatalf("into=%v: %d events, want 3", into, i)
				}
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for k := range ev.Fields.All() {
				if k == "Image" {
					n++
				}
			}
			if n != 1 || ev.Fields.Value("Image") != `C:\b.exe` || ev.Path != `C:\b.exe` {
				t.Errorf("into=%v event %d: Image %d time(s), %q, path %q: want the later value once", into, i, n, ev.Fields.Value("Image"), ev.Path)
			}
		}
		r.Close()
	}
}

// sameEvent compares two events apart from their fields' value arenas
// (NextInto hands its buffer over; copies have none).
func sameEvent(a, b telemetry.Event) bool {
	a.Fields, b.Fields = a.Fields.Clone(), b.Fields.Clone()
	return reflect.DeepEqual(a, b)
}
