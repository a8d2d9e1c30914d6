//go:build linux

package cnproc

import (
	"encoding/binary"
	"testing"

	"golang.org/x/net/bpf"
)

// message builds a connector message of the given event with data words.
func message(what uint32, words ...uint32) []byte {
	ne := binary.NativeEndian
	b := make([]byte, offData+4*len(words))
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], 3)
	ne.PutUint32(b[offCnIdx:], cnIdxProc)
	ne.PutUint32(b[offCnVal:], cnValProc)
	ne.PutUint32(b[offWhat:], what)
	ne.PutUint64(b[offTimestamp:], 12345)
	for i, w := range words {
		ne.PutUint32(b[offData+4*i:], w)
	}
	return b
}

func TestFilterKeepsExecsProcessForksAndProcessExits(t *testing.T) {
	vm, err := bpf.NewVM(filterProgram())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		msg  []byte
		keep bool
	}{
		{"exec", message(procEventExec, 10, 10), true},
		{"exec by a thread", message(procEventExec, 11, 10), true},
		{"process fork", message(procEventFork, 1, 1, 20, 20), true},
		{"thread clone", message(procEventFork, 20, 20, 21, 20), false},
		{"process exit", message(procEventExit, 30, 30, 0, 17, 1, 1), true},
		{"thread exit", message(procEventExit, 31, 30, 0, 17, 1, 1), false},
		{"uid change", message(0x4, 10, 10, 0, 0), false},
		{"comm change", message(0x200, 10, 10, 0, 0), false},
	} {
		n, err := vm.Run(tc.msg)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if (n != 0) != tc.keep {
			t.Errorf("%s: filter returned %d, keep = %v", tc.name, n, tc.keep)
		}
	}
	other := message(procEventExec, 10, 10)
	binary.NativeEndian.PutUint32(other[offCnIdx:], 7)
	if n, _ := vm.Run(other); n != 0 {
		t.Error("a message from another connector passed")
	}
}

func TestParseMessage(t *testing.T) {
	ev, err := parseMessage(message(procEventExit, 30, 30, 3<<8, 17, 5, 6))
	if err != nil {
		t.Fatal(err)
	}
	if ev.what != procEventExit || ev.tgid != 30 || ev.exitCode != 3<<8 || ev.parentTGID != 6 || ev.timestampNs != 12345 {
		t.Errorf("exit: %+v", ev)
	}
	ev, err = parseMessage(message(procEventFork, 1, 2, 3, 4))
	if err != nil || ev.parentTGID != 2 || ev.pid != 3 || ev.tgid != 4 {
		t.Errorf("fork: %+v %v", ev, err)
	}
	if _, err := parseMessage(message(procEventExit, 1, 1)); err == nil {
		t.Error("a short exit message parsed")
	}
}

func TestStatStartTicks(t *testing.T) {
	stat := "1234 (a) b) (c) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100\n"
	if v, ok := statStartTicks([]byte(stat)); !ok || v != 987654 {
		t.Errorf("start ticks = %d %v, want 987654", v, ok)
	}
	if _, ok := statStartTicks([]byte("1 (x) S 1")); ok {
		t.Error("a short stat parsed")
	}
}
