package telemetry

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func TestFields(t *testing.T) {
	var f Fields
	f.Set("Image", `C:\a.exe`)
	f.Set("User", "bob")
	f.Set("Image", `C:\b.exe`)
	if f.Len() != 2 || f.Value("Image") != `C:\b.exe` || f.Value("User") != "bob" {
		t.Fatalf("Set: a later value replaces an earlier one: %v", f.List())
	}
	if _, ok := f.Get("Missing"); ok || f.Value("Missing") != "" {
		t.Fatal("a missing field is absent")
	}
	f.Set("CommandLine", "b.exe -x")
	f.Delete("User")
	var names []string
	for k := range f.All() {
		names = append(names, k)
	}
	if !slices.Equal(names, []string{"Image", "CommandLine"}) {
		t.Fatalf("order %v, want the order fields were set in", names)
	}
	b, err := json.Marshal(f)
	if err != nil || string(b) != `{"Image":"C:\\b.exe","CommandLine":"b.exe -x"}` {
		t.Fatalf("JSON %s, %v", b, err)
	}
	var g Fields
	if err := json.Unmarshal([]byte(`{"z":"1","a":"2","z":"3"}`), &g); err != nil {
		t.Fatal(err)
	}
	if g.Len() != 2 || g.Value("z") != "3" || g.List()[0].Name != "z" {
		t.Fatalf("Unmarshal keeps the order, a later key wins: %v", g.List())
	}
	if err := json.Unmarshal([]byte(`null`), &g); err != nil || g.Len() != 0 {
		t.Fatalf("null: %v %v", err, g.List())
	}
	if err := json.Unmarshal([]byte(`{"a": 1}`), &g); err == nil {
		t.Fatal("a number value should be an error")
	}
	m := FieldsFromMap(map[string]string{"b": "2", "a": "1"})
	if m.List()[0].Name != "a" || m.Value("b") != "2" {
		t.Fatalf("FieldsFromMap: name order: %v", m.List())
	}
	c := m.Clone()
	c.Set("a", "changed")
	if m.Value("a") != "1" {
		t.Fatal("Clone shares its list")
	}
	m.Reset()
	if m.Len() != 0 {
		t.Fatal("Reset")
	}
}

func TestFieldsValueArenaDroppedByMutation(t *testing.T) {
	arena := strings.Clone("rundll32.exeC:\\x.dll")
	build := func() Fields {
		var f Fields
		f.Append("Image", arena[:12])
		f.Append("TargetFilename", arena[12:])
		f.SetValueArena(arena)
		return f
	}
	if f := build(); f.ValueArena() != arena {
		t.Fatal("arena not kept")
	}
	for _, c := range []struct {
		name string
		mut  func(*Fields)
		kept bool
	}{
		{"Set of a value in the arena", func(f *Fields) { f.Set("Copy", arena[2:5]) }, true},
		{"Append of a value in the arena", func(f *Fields) { f.Append("Copy", arena[12:]) }, true},
		{"Set of a foreign value", func(f *Fields) { f.Set("Image", strings.Clone("cmd.exe")) }, false},
		{"Append of a foreign value", func(f *Fields) { f.Append("User", strings.Clone("bob")) }, false},
		{"Delete", func(f *Fields) { f.Delete("Image") }, false},
		{"Reset", func(f *Fields) { f.Reset() }, false},
		{"UnmarshalJSON", func(f *Fields) {
			if err := f.UnmarshalJSON([]byte(`{"a":"b"}`)); err != nil {
				t.Fatal(err)
			}
		}, false},
	} {
		f := build()
		c.mut(&f)
		if got := f.ValueArena() != ""; got != c.kept {
			t.Errorf("%s: arena kept %v, want %v", c.name, got, c.kept)
		}
	}
}
