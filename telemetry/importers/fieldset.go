package importers

import "unsafe"

// fieldSet gathers one record's fields with few allocations: values are
// appended to one byte arena and turned into a single string, which every
// field value then slices; keys are interned across records.
type fieldSet struct {
	arena []byte
	spans []fieldSpan
	keys  map[string]string
	// byPos[n] is the key of the n-th top-level member of the previous
	// record: records of one file list their keys in the same order, so
	// internAt mostly answers with one comparison.
	byPos []string
	// keyBuf holds a key being composed or unescaped.
	keyBuf []byte
}

type fieldSpan struct {
	key        string
	start, end int
}

// maxInternedKeys bounds the key cache against files with unbounded key sets.
const maxInternedKeys = 4096

func (f *fieldSet) reset() {
	f.arena = f.arena[:0]
	f.spans = f.spans[:0]
}

// intern returns a string equal to k, shared across records.
func (f *fieldSet) intern(k []byte) string {
	if s, ok := f.keys[string(k)]; ok {
		return s
	}
	s := string(k)
	if f.keys == nil {
		f.keys = make(map[string]string, 128)
	}
	if len(f.keys) < maxInternedKeys {
		f.keys[s] = s
	}
	return s
}

// internAt is intern for the key of the n-th top-level member.
func (f *fieldSet) internAt(n int, k []byte) string {
	if n < len(f.byPos) && f.byPos[n] == string(k) {
		return f.byPos[n]
	}
	s := f.intern(k)
	if n < maxInternedKeys {
		for len(f.byPos) <= n {
			f.byPos = append(f.byPos, "")
		}
		f.byPos[n] = s
	}
	return s
}

// add records a field whose value is arena[start:].
func (f *fieldSet) add(key string, start int) {
	f.spans = append(f.spans, fieldSpan{key: key, start: start, end: len(f.arena)})
}

// addString records a field with a given value.
func (f *fieldSet) addString(key, value string) {
	start := len(f.arena)
	f.arena = append(f.arena, value...)
	f.add(key, start)
}

// build returns the fields as a fresh map; a later field of the same name
// wins.
func (f *fieldSet) build() map[string]string {
	m := make(map[string]string, len(f.spans)+4)
	all := string(f.arena)
	for _, sp := range f.spans {
		m[sp.key] = all[sp.start:sp.end]
	}
	return m
}

// fill stores the fields in m (which the caller has cleared) and returns
// it; a later field of the same name wins.
func (f *fieldSet) fill(m map[string]string) map[string]string {
	all := string(f.arena)
	for _, sp := range f.spans {
		m[sp.key] = all[sp.start:sp.end]
	}
	return m
}

// fillShared is fill with values that share the arena instead of a copy of
// it: they are valid until the arena is reset and refilled by the next
// record (see IntoReader). It saves one allocation of the record's size,
// and the garbage collection it causes, per record.
func (f *fieldSet) fillShared(m map[string]string) map[string]string {
	if len(f.arena) == 0 {
		return f.fill(m)
	}
	all := unsafe.String(unsafe.SliceData(f.arena), len(f.arena))
	for _, sp := range f.spans {
		m[sp.key] = all[sp.start:sp.end]
	}
	return m
}

// lookup returns the last value stored under key, "" if none.
func (f *fieldSet) lookup(key string) string {
	for i := len(f.spans) - 1; i >= 0; i-- {
		if sp := f.spans[i]; sp.key == key {
			return string(f.arena[sp.start:sp.end])
		}
	}
	return ""
}
