//go:build linux

package ebpf

import (
	"encoding/binary"
	"reflect"
	"testing"
	"unsafe"
)

func TestHeaderMatchesGeneratedType(t *testing.T) {
	if got := unsafe.Sizeof(processEvent{}); got != headerSize {
		t.Fatalf("sizeof(struct event) = %d, headerSize = %d", got, headerSize)
	}
	var e processEvent
	for name, want := range map[string]uintptr{
		"StartNs": 8, "CgroupId": 16, "Kind": 24, "Pid": 28, "Ppid": 32, "Uid": 36, "Euid": 40,
		"Gid": 44, "Egid": 48, "Auid": 52, "ExitCode": 56, "Flags": 60, "ArgsLen": 64,
		"ExeLen": 66, "CwdLen": 68, "FileLen": 70, "Comm": 72,
	} {
		f, _ := reflect.TypeOf(e).FieldByName(name)
		if f.Offset != want {
			t.Errorf("offset of %s = %d, parseHeader reads %d", name, f.Offset, want)
		}
	}
}

func record(kind uint32, args, exe, cwd, file string, exitCode uint32) []byte {
	b := make([]byte, headerSize)
	ne := binary.NativeEndian
	ne.PutUint64(b[0:], 2e9)
	ne.PutUint64(b[8:], 1e9)
	ne.PutUint32(b[24:], kind)
	ne.PutUint32(b[28:], 42)
	ne.PutUint32(b[32:], 7)
	ne.PutUint32(b[52:], ^uint32(0))
	ne.PutUint32(b[56:], exitCode)
	ne.PutUint16(b[64:], uint16(len(args)))
	ne.PutUint16(b[66:], uint16(len(exe)))
	ne.PutUint16(b[68:], uint16(len(cwd)))
	ne.PutUint16(b[70:], uint16(len(file)))
	copy(b[72:], "true")
	return append(b, args+exe+cwd+file...)
}

func TestDecodeExec(t *testing.T) {
	raw := record(recordExec, "/bin/true\x00a b\x00\x00", "true\x00bin\x00usr\x00", "", "/bin/true\x00", 0)
	ev, err := decode(raw, clock{bootWall: 1e12}, "h")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/bin/true", "a b", ""}; !reflect.DeepEqual(ev.Args, want) {
		t.Errorf("Args = %q, want %q", ev.Args, want)
	}
	if ev.Cmdline != "/bin/true a b " || ev.Path != "/usr/bin/true" || ev.Cwd != "/" {
		t.Errorf("Cmdline %q Path %q Cwd %q", ev.Cmdline, ev.Path, ev.Cwd)
	}
	if ev.PID != 42 || ev.PPID != 7 || ev.AUID != -1 || ev.Comm != "true" || ev.Host != "h" {
		t.Errorf("ids: %+v", ev)
	}
	if ev.StartTime.UnixNano() != 1e12+1e9 || ev.Time.UnixNano() != 1e12+2e9 {
		t.Errorf("times %v %v", ev.StartTime, ev.Time)
	}
}

func TestDecodeExit(t *testing.T) {
	for _, tc := range []struct {
		status uint32
		code   int64
		signal int
	}{{3 << 8, 3, 0}, {9, 137, 9}, {0, 0, 0}} {
		ev, err := decode(record(recordExit, "", "", "", "", tc.status), clock{}, "")
		if err != nil {
			t.Fatal(err)
		}
		if ev.ExitCode != tc.code || ev.ExitSignal != tc.signal {
			t.Errorf("status %#x: code %d signal %d, want %d %d", tc.status, ev.ExitCode, ev.ExitSignal, tc.code, tc.signal)
		}
	}
}

func TestDecodeRejectsShortRecords(t *testing.T) {
	if _, err := decode(make([]byte, 10), clock{}, ""); err == nil {
		t.Error("a 10-byte record decoded")
	}
	raw := record(recordExec, "abc\x00", "", "", "", 0)
	if _, err := decode(raw[:len(raw)-2], clock{}, ""); err == nil {
		t.Error("a record shorter than its lengths decoded")
	}
}
