package importers

import (
	"strings"
	"unsafe"

	"github.com/quarry-sec/quarry/telemetry"
)

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
	// plain[n]: byPos[n] holds no '"' or '\\' (see predicted)
	plain []bool
	// keyBuf holds a key being composed or unescaped.
	keyBuf []byte

	// keySeen detects a key given twice in one record (a later field of
	// the same name wins): entries of other records have another gen.
	keySeen [64]struct {
		key string
		gen uint32
	}
	gen  uint32
	dups bool // the record has a key twice
	nkey int  // keys stamped in keySeen this record
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
	f.dups, f.nkey = false, 0
	if f.gen++; f.gen == 0 {
		clear(f.keySeen[:])
		f.gen = 1
	}
}

// noteKey records a key of the current record and notes a repeat. Keys are
// interned, so one name is one address; past 48 keys every record is
// treated as possibly repeating.
func (f *fieldSet) noteKey(key string) {
	if f.nkey++; f.nkey > len(f.keySeen)*3/4 {
		f.dups = true
		return
	}
	h := uint64(uintptr(unsafe.Pointer(unsafe.StringData(key)))+uintptr(len(key))) * 0x9E3779B97F4A7C15 >> 58
	for {
		e := &f.keySeen[h%uint64(len(f.keySeen))]
		if e.gen != f.gen {
			e.key, e.gen = key, f.gen
			return
		}
		if e.key == key {
			f.dups = true
			return
		}
		h++
	}
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
	} else {
		// Not interned: a repeat of this name in the record would have
		// another address, which noteKey would not see.
		f.dups = true
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
			f.plain = append(f.plain, false)
		}
		f.byPos[n] = s
		f.plain[n] = strings.IndexByte(s, '"') < 0 && strings.IndexByte(s, '\\') < 0
	}
	return s
}

// predicted returns the key of the n-th top-level member of the previous
// record when it can be matched by its raw bytes (see
// jscanner.predictedMember), "" otherwise.
func (f *fieldSet) predicted(n int) string {
	if n < len(f.byPos) && f.plain[n] {
		return f.byPos[n]
	}
	return ""
}

// add records a field whose value is arena[start:].
func (f *fieldSet) add(key string, start int) {
	f.noteKey(key)
	f.spans = append(f.spans, fieldSpan{key: key, start: start, end: len(f.arena)})
}

// build returns the fields with values in one fresh string; a later field
// of the same name wins.
func (f *fieldSet) build() telemetry.Fields {
	var out telemetry.Fields
	f.fillFrom(&out, string(f.arena))
	return out
}

// fillShared stores the fields in out (reset first) with values that share
// the arena instead of a copy of it: they are valid until the arena is
// reset and refilled by the next record (see IntoReader). It saves one
// allocation of the record's size, and the garbage collection it causes,
// per record.
func (f *fieldSet) fillShared(out *telemetry.Fields) {
	all := ""
	if len(f.arena) > 0 {
		all = unsafe.String(unsafe.SliceData(f.arena), len(f.arena))
	}
	f.fillFrom(out, all)
}

func (f *fieldSet) fillFrom(out *telemetry.Fields, all string) {
	out.Reset()
	for _, sp := range f.spans {
		if f.dups {
			out.Set(sp.key, all[sp.start:sp.end])
		} else {
			out.Append(sp.key, all[sp.start:sp.end])
		}
	}
	out.SetValueArena(all)
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
