package process

import (
	"strings"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/tables"
)

func TestColumnConstantsMatchColumns(t *testing.T) {
	if int(numColumns) != len(columns) {
		t.Fatalf("%d constants for %d columns", numColumns, len(columns))
	}
	checks := map[int]string{cPid: "pid", cTime: "time", cSyscall: "syscall", cHostIdentifier: "host_identifier", cTechniques: "techniques"}
	for i, name := range checks {
		if columns[i].Name != name {
			t.Errorf("constant for %s points at %s", name, columns[i].Name)
		}
	}
}

// TestPushdownReachesStore checks which constraints become store filters.
func TestPushdownReachesStore(t *testing.T) {
	q := tables.QueryContext{Constraints: []tables.Constraint{
		{Column: "time", Op: tables.OpGE, Value: int64(1000)},
		{Column: "time", Op: tables.OpLT, Value: int64(2000)},
		{Column: "pid", Op: tables.OpIN, Values: []any{int64(1), int64(2)}},
		{Column: "path", Op: tables.OpLIKE, Value: "%/bash"},
		{Column: "host_identifier", Op: tables.OpEQ, Value: "web1"},
		{Column: "source", Op: tables.OpEQ, Value: "ebpf"},
		{Column: "cmdline", Op: tables.OpEQ, Value: "not pushed"},
	}}
	f := filterFor(q)
	if !f.Since.Equal(time.Unix(1000, 0)) || !f.Until.Equal(time.Unix(2000, 0)) {
		t.Errorf("time window %v..%v", f.Since, f.Until)
	}
	if len(f.PIDs) != 2 || strings.Join(f.PathLike, "") != "%/bash" || f.Hosts[0] != "web1" || f.Sources[0] != "ebpf" {
		t.Errorf("filter %+v", f)
	}
	if len(f.Kinds) != 2 {
		t.Errorf("process_events reads exec and exit only: %v", f.Kinds)
	}
}
