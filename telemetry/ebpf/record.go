//go:build linux

package ebpf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/quarry-sec/quarry/telemetry"
)

// Record kinds and flags, as written by bpf/process.bpf.c.
const (
	recordExec = 1
	recordExit = 2

	flagArgsTruncated = 1
	flagExeTruncated  = 2
	flagCwdTruncated  = 4
	flagNoAUID        = 8
)

// headerSize is sizeof(struct event) in bpf/process.bpf.c.
const headerSize = 88

// header is the fixed part of a record.
type header struct {
	timeNs, startNs, cgroupID uint64
	kind, pid, ppid           uint32
	uid, euid, gid, egid      uint32
	auid, exitCode, flags     uint32
	argsLen, exeLen, cwdLen   uint16
	fileLen                   uint16
	comm                      []byte
}

func parseHeader(raw []byte) (header, error) {
	if len(raw) < headerSize {
		return header{}, fmt.Errorf("ebpf: record of %d bytes, shorter than its %d-byte header", len(raw), headerSize)
	}
	ne := binary.NativeEndian
	u32 := func(off int) uint32 { return ne.Uint32(raw[off:]) }
	u16 := func(off int) uint16 { return ne.Uint16(raw[off:]) }
	h := header{
		timeNs: ne.Uint64(raw[0:]), startNs: ne.Uint64(raw[8:]), cgroupID: ne.Uint64(raw[16:]),
		kind: u32(24), pid: u32(28), ppid: u32(32),
		uid: u32(36), euid: u32(40), gid: u32(44), egid: u32(48),
		auid: u32(52), exitCode: u32(56), flags: u32(60),
		argsLen: u16(64), exeLen: u16(66), cwdLen: u16(68), fileLen: u16(70),
		comm: raw[72:88],
	}
	if n := headerSize + int(h.argsLen) + int(h.exeLen) + int(h.cwdLen) + int(h.fileLen); n > len(raw) {
		return header{}, fmt.Errorf("ebpf: record of %d bytes announces %d", len(raw), n)
	}
	return h, nil
}

// clock turns boot-relative nanoseconds into wall time.
type clock struct {
	bootWall int64 // wall-clock nanoseconds at boot
}

func (c clock) wall(bootNs uint64) time.Time {
	return time.Unix(0, c.bootWall+int64(bootNs)).UTC()
}

// decode turns one ring buffer record into an event.
func decode(raw []byte, clk clock, host string) (telemetry.Event, error) {
	a, err := decodeRecord(raw, clk, host)
	return a.ev, err
}

// decodeRecord turns one ring buffer record into an event, and for a DNS
// record the message the collector pairs.
func decodeRecord(raw []byte, clk clock, host string) (activity, error) {
	h, err := parseHeader(raw)
	if err != nil {
		return activity{}, err
	}
	var ev telemetry.Event
	switch h.kind {
	case recordExec:
		ev = telemetry.NewEvent(telemetry.KindExec, telemetry.SourceEBPF)
	case recordExit:
		ev = telemetry.NewEvent(telemetry.KindExit, telemetry.SourceEBPF)
	case recordNet, recordFile, recordAccess, recordModule, recordMemfd, recordPriv, recordDNS:
		ev = telemetry.NewEvent(telemetry.KindOther, telemetry.SourceEBPF)
	default:
		return activity{}, fmt.Errorf("ebpf: unknown record kind %d", h.kind)
	}
	ev.Time = clk.wall(h.timeNs)
	ev.StartTime = clk.wall(h.startNs)
	ev.Host = host
	ev.PID, ev.PPID = int64(h.pid), int64(h.ppid)
	ev.UID, ev.EUID = int64(h.uid), int64(h.euid)
	ev.GID, ev.EGID = int64(h.gid), int64(h.egid)
	if h.flags&flagNoAUID == 0 && h.auid != ^uint32(0) {
		ev.AUID = int64(h.auid)
	}
	ev.CgroupID = h.cgroupID
	ev.Comm = cString(h.comm)

	if h.kind == recordExit {
		code, sig := (h.exitCode>>8)&0xff, h.exitCode&0x7f
		ev.ExitSignal = int(sig)
		ev.ExitCode = int64(code)
		if sig != 0 {
			ev.ExitCode = 128 + int64(sig)
		}
		return activity{ev: ev}, nil
	}
	if h.kind != recordExec {
		return decodeActivity(h, raw, ev)
	}

	data := raw[headerSize:]
	args, data := data[:h.argsLen], data[h.argsLen:]
	exe, data := data[:h.exeLen], data[h.exeLen:]
	cwd, data := data[:h.cwdLen], data[h.cwdLen:]
	file := cString(data[:h.fileLen])

	ev.Args = splitArgs(args)
	ev.Cmdline = strings.Join(ev.Args, " ")
	ev.Path = joinComponents(exe)
	if h.flags&flagExeTruncated != 0 || ev.Path == "" {
		if strings.HasPrefix(file, "/") {
			ev.Path = file
		}
	}
	ev.Cwd = joinComponents(cwd)
	if h.flags&(flagArgsTruncated|flagCwdTruncated) != 0 {
		ev.Fields = telemetry.Fields{}
		if h.flags&flagArgsTruncated != 0 {
			ev.Fields.Set("args_truncated", "1")
		}
		if h.flags&flagCwdTruncated != 0 {
			ev.Fields.Set("cwd_truncated", "1")
		}
	}
	return activity{ev: ev}, nil
}

// splitArgs splits NUL-separated argv; a last argument cut short keeps what
// was read.
func splitArgs(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	b = bytes.TrimSuffix(b, []byte{0})
	return strings.Split(string(b), "\x00")
}

// joinComponents builds a path from NUL-terminated components written leaf
// first; no components is the root.
func joinComponents(b []byte) string {
	if len(b) == 0 {
		return "/"
	}
	parts := strings.Split(string(bytes.TrimSuffix(b, []byte{0})), "\x00")
	var sb strings.Builder
	sb.Grow(len(b) + 1)
	for i := len(parts) - 1; i >= 0; i-- {
		sb.WriteByte('/')
		sb.WriteString(parts[i])
	}
	return sb.String()
}

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
