package detections

import (
	"strings"
	"testing"
)

// TestSameString checks the field-name comparison of the engine's name
// cache: the same bytes, equal bytes elsewhere, and different names.
func TestSameString(t *testing.T) {
	name := "CommandLine"
	copied := strings.Clone(name)
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{name, name, true},
		{name, copied, true},
		{name, name[:7], false},
		{name, "commandline", false},
		{"", "", true},
		{name[:0], copied[:0], true},
	} {
		if got := sameString(c.a, c.b); got != c.want {
			t.Errorf("sameString(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}
