package attack

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"reflect"
	"sync"
	"unsafe"
)

// The flat form is how the binary embeds its knowledge base: the snapshot's
// values in field order (strings and lists as a uvarint length and their
// bytes or elements, booleans as a byte, integers as varints), after a
// header naming the form and a hash of the snapshot's type (every field's
// name and kind, so that data written for another layout is refused).
// Reading it copies no string: each is a view of the data, which must
// therefore never change (the embedded bytes are read-only), and a load
// allocates only the slices of structs. It is read ≈ 10× faster than the
// gob form (no copy of the message, none of each string, no inflating).

const flatMagic = "QKBF1\n"

// flatSchema is the hash of the snapshot's layout.
var flatSchema = sync.OnceValue(func() uint64 {
	h := fnv.New64a()
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		fmt.Fprintf(h, "%s(", t.Kind())
		switch t.Kind() {
		case reflect.Slice:
			walk(t.Elem())
		case reflect.Struct:
			for i := range t.NumField() {
				fmt.Fprintf(h, "%s:", t.Field(i).Name)
				walk(t.Field(i).Type)
			}
		}
		h.Write([]byte(")"))
	}
	walk(reflect.TypeFor[snapshot]())
	return h.Sum64()
})

// WriteFlat writes kb in the flat form (see go generate: the binary's
// data/attack.kb).
func WriteFlat(w io.Writer, kb *KB) error {
	b := append([]byte(flatMagic), 0, 0, 0, 0, 0, 0, 0, 0)
	binary.LittleEndian.PutUint64(b[len(flatMagic):], flatSchema())
	b, err := appendFlat(b, reflect.ValueOf(kb.snap))
	if err != nil {
		return fmt.Errorf("write flat attack data: %w", err)
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("write flat attack data: %w", err)
	}
	return nil
}

func appendFlat(b []byte, v reflect.Value) ([]byte, error) {
	switch v.Kind() {
	case reflect.String:
		b = binary.AppendUvarint(b, uint64(v.Len()))
		return append(b, v.String()...), nil
	case reflect.Bool:
		if v.Bool() {
			return append(b, 1), nil
		}
		return append(b, 0), nil
	case reflect.Int:
		return binary.AppendVarint(b, v.Int()), nil
	case reflect.Slice:
		b = binary.AppendUvarint(b, uint64(v.Len()))
		for i := range v.Len() {
			var err error
			if b, err = appendFlat(b, v.Index(i)); err != nil {
				return nil, err
			}
		}
		return b, nil
	case reflect.Struct:
		for i := range v.NumField() {
			var err error
			if b, err = appendFlat(b, v.Field(i)); err != nil {
				return nil, err
			}
		}
		return b, nil
	}
	return nil, fmt.Errorf("flat form: unsupported kind %s", v.Kind())
}

// readFlat loads the flat form. The KB's strings are views of data, which
// must never change.
func readFlat(data []byte) (*KB, error) {
	if len(data) < len(flatMagic)+8 || string(data[:len(flatMagic)]) != flatMagic {
		return nil, errors.New("read flat attack data: not the flat form")
	}
	if s := binary.LittleEndian.Uint64(data[len(flatMagic):]); s != flatSchema() {
		return nil, fmt.Errorf("read flat attack data: written for another layout (schema %x, want %x): run go generate ./attack/", s, flatSchema())
	}
	d := flatDecoder{data: data, at: len(flatMagic) + 8}
	var s snapshot
	d.value(reflect.ValueOf(&s).Elem())
	if d.err == nil && d.at != len(d.data) {
		d.err = fmt.Errorf("%d bytes left over", len(d.data)-d.at)
	}
	if d.err != nil {
		return nil, fmt.Errorf("read flat attack data: at byte %d: %w", d.at, d.err)
	}
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("read flat attack data: %w", err)
	}
	return newKB(s), nil
}

// flatDecoder reads the flat form; the first error stops it.
type flatDecoder struct {
	data []byte
	at   int
	err  error
}

func (d *flatDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	n, k := binary.Uvarint(d.data[d.at:])
	if k <= 0 {
		d.err = errors.New("bad length")
		return 0
	}
	d.at += k
	return n
}

// count reads a length of at most what the rest of the data can hold,
// each element taking at least min bytes.
func (d *flatDecoder) count(min int) int {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.data)-d.at)/uint64(min) {
		d.err = fmt.Errorf("length %d beyond the data", n)
		return 0
	}
	return int(n)
}

func (d *flatDecoder) str() string {
	n := d.count(1)
	if d.err != nil || n == 0 {
		return ""
	}
	s := unsafe.String(&d.data[d.at], n)
	d.at += n
	return s
}

func (d *flatDecoder) value(v reflect.Value) {
	if d.err != nil {
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(d.str())
	case reflect.Bool:
		if d.at >= len(d.data) || d.data[d.at] > 1 {
			d.err = errors.New("bad boolean")
			return
		}
		v.SetBool(d.data[d.at] == 1)
		d.at++
	case reflect.Int:
		n, k := binary.Varint(d.data[d.at:])
		if k <= 0 {
			d.err = errors.New("bad integer")
			return
		}
		v.SetInt(n)
		d.at += k
	case reflect.Slice:
		n := d.count(1)
		if d.err != nil || n == 0 {
			return
		}
		if v.Type() == reflect.TypeFor[[]string]() {
			// The common case, without reflection per element.
			ss := make([]string, n)
			for i := range ss {
				ss[i] = d.str()
			}
			v.Set(reflect.ValueOf(ss))
			return
		}
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			d.value(s.Index(i))
		}
		v.Set(s)
	case reflect.Struct:
		for i := range v.NumField() {
			d.value(v.Field(i))
		}
	default:
		d.err = fmt.Errorf("unsupported kind %s", v.Kind())
	}
}
