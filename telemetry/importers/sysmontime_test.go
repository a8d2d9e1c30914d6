package importers

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"
)

// TestParseSysmonTime checks the fast UtcTime reader against the layout
// parser on valid times (leap days included) and on near misses.
func TestParseSysmonTime(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	layout := "2006-01-02 15:04:05.000"
	for range 20000 {
		want := time.Date(1990+r.IntN(60), time.Month(1+r.IntN(12)), 1+r.IntN(31), r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(1000)*1e6, time.UTC)
		s := want.Format(layout)
		got, ok := parseSysmonTime(s)
		if !ok || !got.Equal(want) {
			t.Fatalf("%q: %v %v, want %v", s, got, ok, want)
		}
	}
	for _, s := range []string{"2024-02-29 10:00:00.000", "2023-02-29 10:00:00.000", "2024-13-01 10:00:00.000",
		"2024-04-31 10:00:00.000", "2024-01-01 24:00:00.000", "2024-01-01 10:60:00.000", "2024-01-01 10:00:60.000",
		"2024-01-01T10:00:00.000", "2024-01-01 10:00:00.00x", "2024-01-01 10:00:00", "+024-01-01 10:00:00.000"} {
		got, ok := parseSysmonTime(s)
		want, err := time.Parse(layout, s)
		if ok != (err == nil) || ok && !got.Equal(want) {
			t.Errorf("%q: fast %v %v, layout %v %v", s, got, ok, want, err)
		}
	}
	if got, ok := parseWinTime("2024-01-01T10:00:00.5Z"); !ok || got.Nanosecond() != 5e8 {
		t.Errorf("RFC 3339 still read: %v %v", got, ok)
	}
}

// TestAppendUnescapedMatchesJSON checks the JSON string decoder against
// encoding/json on random strings full of escapes (Windows paths), at every
// alignment of the eight-byte copy.
func TestAppendUnescapedMatchesJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	pieces := []string{`C:`, `\\`, `Windows`, `\"`, `\n`, `\t`, `\u00e9`, `\ud83d\ude00`, `x`, `System32`, `\/`, ` `, `é`}
	for range 20000 {
		var raw []byte
		for n := r.IntN(30); n > 0; n-- {
			raw = append(raw, pieces[r.IntN(len(pieces))]...)
		}
		var want string
		if err := json.Unmarshal([]byte(`"`+string(raw)+`"`), &want); err != nil {
			t.Fatal(err)
		}
		got, err := appendUnescaped([]byte("pre"), raw)
		if err != nil || string(got) != "pre"+want {
			t.Fatalf("%q: got %q, %v; want %q", raw, got, err, want)
		}
	}
}
