package eventstore

import (
	"encoding/json"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/quarry-sec/quarry/telemetry"
)

// FuzzDecodeFields checks the fast reader of the fields column against
// encoding/json: whatever it accepts, encoding/json reads the same.
func FuzzDecodeFields(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":"b"}`, `{"Image":"C:\\x.exe","Q":"say \"hi\"\n","u":"\u00e9\ud83d\ude00"}`,
		` { "a" : "b" , "a":"c" } `, `{"a":1}`, `null`, `{"a":"b"`, `{"a":"b"}x`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var fast, slow telemetry.Fields
		err := decodeFlat(s, &fast)
		if err != nil || !utf8.ValidString(s) {
			return
		}
		if err := json.Unmarshal([]byte(s), &slow); err != nil {
			t.Fatalf("fast reader accepted %q, encoding/json: %v", s, err)
		}
		if !reflect.DeepEqual(fast.List(), slow.List()) && !(fast.Len() == 0 && slow.Len() == 0) {
			t.Fatalf("%q: fast %v, encoding/json %v", s, fast.List(), slow.List())
		}
	})
}

func TestDecodeFieldsRoundTrip(t *testing.T) {
	var in telemetry.Fields
	in.Set("CommandLine", "\"C:\\Windows\\cmd.exe\" /c echo <x> & \u2028 \x01")
	in.Set("Image", `C:\Windows\cmd.exe`)
	in.Set("Empty", "")
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out telemetry.Fields
	if err := decodeFields(string(b), &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in.List(), out.List()) {
		t.Errorf("round trip: %v, want %v", out.List(), in.List())
	}
	if err := decodeFields(`{"a":`, &out); err == nil {
		t.Error("a broken object decoded without error")
	}
}
