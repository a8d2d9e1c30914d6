package importers

import (
	"errors"
	"io"
	"maps"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/quarry-sec/quarry/telemetry"
)

// TestNextIntoMatchesNext checks that NextInto, reusing one event and its
// Fields map, yields the same events and errors as Next, for flat and
// nested JSON, line and stream mode, with a malformed record in between.
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
			cp := ev
			cp.Fields = maps.Clone(ev.Fields)
			got = append(got, cp)
		}
		r.Close()
		if nerr != len(wantErrs) || len(got) != len(want) {
			t.Fatalf("%s: NextInto read %d events and %d errors, Next %d and %d", path, len(got), nerr, len(want), len(wantErrs))
		}
		for i := range want {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Fatalf("%s: event %d differs:\nNextInto %+v\nNext     %+v", path, i, got[i], want[i])
			}
		}
		if len(want) == 0 {
			t.Fatalf("%s: no events", path)
		}
	}
}

// TestNextIntoAllocations checks that decoding into a reused event costs
// at most one allocation (the value arena's string) per event.
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
	if per > 1.5 {
		t.Errorf("%.2f allocations per event, want ≤ 1.5", per)
	}
}
