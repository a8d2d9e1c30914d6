package main

import (
	"strings"
	"testing"
)

// Log lines written to something other than a terminal carry no colour
// escape codes.
func TestLogNotColouredOffTerminal(t *testing.T) {
	_, errs, code := quarry(t, t.TempDir(), "", "query", "SELECT * FROM process_tree")
	if code != 1 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if strings.Contains(errs, "\x1b[") {
		t.Fatalf("escape codes in a redirected log: %q", errs)
	}
}
