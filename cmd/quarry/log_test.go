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

// A query stopped by --timeout says so, naming the flag, rather than Go's
// "context deadline exceeded".
func TestQueryTimeoutMessage(t *testing.T) {
	const endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c"
	dir := t.TempDir()
	_, errs, code := quarry(t, dir, "", "query", "--timeout", "50ms", endless)
	if code != 1 || !strings.Contains(errs, "stopped after --timeout 50ms") {
		t.Errorf("query: exit %d: %s", code, errs)
	}
	_, errs, code = quarry(t, dir, endless+";\n", "shell", "--timeout", "50ms")
	if code != 1 || !strings.Contains(errs, "stopped after --timeout 50ms") {
		t.Errorf("shell: exit %d: %s", code, errs)
	}
}
