package telemetry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"iter"
	"slices"
	"strings"
	"unsafe"
)

// Field is one of a record's own fields.
type Field struct {
	Name, Value string
}

// Fields is a record's own fields in the order the source gave them; a name
// appears at most once. The zero value is empty. A record has a few dozen
// fields: lookups scan the list, and code that reads many fields of every
// event reads them in one pass (All, List). A list rather than a map makes
// decoding a record and reading all of it a few times cheaper, and keeps
// the source's order for display.
type Fields struct {
	list []Field
	// arena, when set, holds every value of list (see SetValueArena).
	arena string
}

// SetValueArena records that every field value is a substring of arena
// (by memory: a decoder that decodes a record's values into one buffer
// hands that buffer over). A reader may then look for a literal in arena
// once instead of in each value: a literal absent from arena is in no
// value (arena may hold more than the values). Any mutation that could
// break the invariant drops the arena: Set or Append of a value outside
// it, Delete, Reset, UnmarshalJSON.
func (f *Fields) SetValueArena(arena string) { f.arena = arena }

// ValueArena returns the buffer every value lies in, "" when none was
// handed over (or a mutation dropped it).
func (f Fields) ValueArena() string { return f.arena }

// inArena reports whether v lies within the arena's memory.
func (f *Fields) inArena(v string) bool {
	if len(v) == 0 {
		return true
	}
	if len(f.arena) == 0 {
		return false
	}
	a := uintptr(unsafe.Pointer(unsafe.StringData(f.arena)))
	p := uintptr(unsafe.Pointer(unsafe.StringData(v)))
	return p >= a && p+uintptr(len(v)) <= a+uintptr(len(f.arena))
}

// FieldsFromMap returns the fields of m in name order.
func FieldsFromMap(m map[string]string) Fields {
	f := Fields{list: make([]Field, 0, len(m))}
	for k, v := range m {
		f.list = append(f.list, Field{k, v})
	}
	slices.SortFunc(f.list, func(a, b Field) int { return strings.Compare(a.Name, b.Name) })
	return f
}

// Len is the number of fields.
func (f Fields) Len() int { return len(f.list) }

// Get returns a field's value and whether it is present.
func (f Fields) Get(name string) (string, bool) {
	for i := range f.list {
		if f.list[i].Name == name {
			return f.list[i].Value, true
		}
	}
	return "", false
}

// Value returns a field's value, "" when absent.
func (f Fields) Value(name string) string {
	v, _ := f.Get(name)
	return v
}

// Set replaces a field's value, or adds the field at the end.
func (f *Fields) Set(name, value string) {
	if f.arena != "" && !f.inArena(value) {
		f.arena = ""
	}
	for i := range f.list {
		if f.list[i].Name == name {
			f.list[i].Value = value
			return
		}
	}
	f.list = append(f.list, Field{name, value})
}

// Append adds a field at the end without looking for one of the same
// name: for decoders that know their names are distinct.
func (f *Fields) Append(name, value string) {
	if f.arena != "" && !f.inArena(value) {
		f.arena = ""
	}
	f.list = append(f.list, Field{name, value})
}

// Delete removes a field.
func (f *Fields) Delete(name string) {
	f.arena = ""
	f.list = slices.DeleteFunc(f.list, func(x Field) bool { return x.Name == name })
}

// Reset empties the fields, keeping their storage for reuse.
func (f *Fields) Reset() {
	f.arena = ""
	clear(f.list)
	f.list = f.list[:0]
}

// All yields every field, in order.
func (f Fields) All() iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		for _, x := range f.list {
			if !yield(x.Name, x.Value) {
				return
			}
		}
	}
}

// List returns the fields in order; the slice is shared: do not modify.
func (f Fields) List() []Field { return f.list }

// Clone returns a copy whose strings are the fields' own (not shared with
// a reader's buffer).
func (f Fields) Clone() Fields {
	if f.list == nil {
		return Fields{}
	}
	c := Fields{list: make([]Field, len(f.list))}
	for i, x := range f.list {
		c.list[i] = Field{strings.Clone(x.Name), strings.Clone(x.Value)}
	}
	return c
}

// MarshalJSON writes the fields as a JSON object, in order.
func (f Fields) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, x := range f.list {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(x.Name)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(x.Value)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON reads a JSON object of string values, keeping its order.
func (f *Fields) UnmarshalJSON(data []byte) error {
	f.arena = ""
	dec := json.NewDecoder(bytes.NewReader(data))
	t, err := dec.Token()
	if err != nil {
		return err
	}
	if t == nil {
		f.Reset()
		return nil
	}
	if d, ok := t.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("fields: want a JSON object")
	}
	f.Reset()
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return err
		}
		k, _ := kt.(string)
		var v string
		if err := dec.Decode(&v); err != nil {
			return fmt.Errorf("fields: %q: %w", k, err)
		}
		f.Set(k, v)
	}
	_, err = dec.Token()
	return err
}
