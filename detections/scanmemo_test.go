package detections

import (
	"slices"
	"testing"
)

// TestFieldMemoLast checks the memo's answer for a value looked up again
// right away (from its last entry) and for values in turn (from its map).
func TestFieldMemoLast(t *testing.T) {
	m := &fieldMemo{lits: map[string]memoEntry{}}
	buf := []byte("a value")
	m.store(string(buf), []int32{1})
	buf[0] = 'A' // the stored value is a copy
	m.store("b value", []int32{2, 3})
	for _, c := range []struct {
		v    string
		want []int32
		ok   bool
	}{
		{"b value", []int32{2, 3}, true}, {"b value", []int32{2, 3}, true}, {"a value", []int32{1}, true},
		{"a value", []int32{1}, true}, {"A value", nil, false}, {"b value", []int32{2, 3}, true}, {"c value", nil, false},
	} {
		got, ok := m.lookup(c.v)
		if ok != c.ok || !slices.Equal(got, c.want) {
			t.Fatalf("lookup(%q) = %v %v, want %v %v", c.v, got, ok, c.want, c.ok)
		}
	}
	if m.hits != 5 || m.misses != 2 {
		t.Errorf("hits %d misses %d, want 5 and 2", m.hits, m.misses)
	}
}
