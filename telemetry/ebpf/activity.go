//go:build linux

package ebpf

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"path"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/quarry-sec/quarry/telemetry"
)

// Activity record kinds, actions and flags, as written by bpf/activity.h.
const (
	recordNet    = 3
	recordFile   = 4
	recordAccess = 5
	recordModule = 6
	recordMemfd  = 7
	recordPriv   = 8
	recordDNS    = 9

	flagNoExe            = 16
	flagPath1Raw         = 32
	flagPath1Truncated   = 64
	flagPath2Truncated   = 128
	flagPayloadTruncated = 256
	flagBase1            = 512
	flagBase3            = 1024

	dnsSent, dnsReceived = 1, 2
	accessPtrace         = 1
	accessVMWrite        = 2
	moduleFinit          = 1
	moduleInit           = 2
)

// detailSize is sizeof(struct detail) in bpf/activity.h.
const detailSize = 136

// detail is the kind-specific fixed part of an activity record.
type detail struct {
	action, arg                uint32
	family, sport, dport       uint16
	path1Len, path2Len, payLen uint16
	mode, targetPID            uint32
	oldIDs, newIDs             [4]uint32
	path3Len, path4Len         uint16
	ret                        int64
	oldCaps, newCaps           [2]uint64
	saddr, daddr               [16]byte
}

func parseDetail(b []byte) detail {
	ne := binary.NativeEndian
	d := detail{
		action: ne.Uint32(b[0:]), arg: ne.Uint32(b[4:]),
		family: ne.Uint16(b[8:]), sport: ne.Uint16(b[10:]), dport: ne.Uint16(b[12:]),
		path1Len: ne.Uint16(b[14:]), path2Len: ne.Uint16(b[16:]), payLen: ne.Uint16(b[18:]),
		mode: ne.Uint32(b[20:]), targetPID: ne.Uint32(b[24:]),
	}
	for i := range 4 {
		d.oldIDs[i] = ne.Uint32(b[28+4*i:])
		d.newIDs[i] = ne.Uint32(b[44+4*i:])
	}
	d.path3Len, d.path4Len = ne.Uint16(b[60:]), ne.Uint16(b[62:])
	d.ret = int64(ne.Uint64(b[64:]))
	for i := range 2 {
		d.oldCaps[i] = ne.Uint64(b[72+8*i:])
		d.newCaps[i] = ne.Uint64(b[88+8*i:])
	}
	copy(d.saddr[:], b[104:120])
	copy(d.daddr[:], b[120:136])
	return d
}

// activity is a decoded activity record: the event with its process part
// filled, and for DNS the message, which the collector pairs.
type activity struct {
	ev      telemetry.Event
	dns     []byte // the DNS message (possibly cut short)
	dnsSent bool
	// dnsLengthOnly marks a TCP read or write of nothing but the 2-byte
	// length prefix, which carries no message.
	dnsLengthOnly bool
}

// tcpDNSMessage returns the DNS message of bytes a syscall moved over a TCP
// DNS connection (n of them in all; b may be cut short): a message over TCP
// is preceded by its length in 2 bytes, which a client writes with it or on
// its own (and reads likewise). The prefix is dropped when its value is the
// rest's length; lengthOnly is set when the call moved only the prefix.
func tcpDNSMessage(b []byte, n uint32) (msg []byte, lengthOnly bool) {
	if n == 2 && len(b) == 2 {
		return nil, true
	}
	if len(b) >= 2 && n >= 2 && uint32(b[0])<<8|uint32(b[1]) == n-2 {
		return b[2:], false
	}
	return b, false
}

// decodeActivity decodes the body of an activity record whose header h is
// already parsed; ev has the process part filled.
func decodeActivity(h header, raw []byte, ev telemetry.Event) (activity, error) {
	body := raw[headerSize:]
	if len(body) < detailSize {
		return activity{}, fmt.Errorf("ebpf: activity record of %d bytes, shorter than its %d-byte detail", len(raw), headerSize+detailSize)
	}
	d := parseDetail(body)
	body = body[detailSize:]
	if n := int(h.exeLen) + int(d.path1Len) + int(d.path2Len) + int(d.path3Len) + int(d.path4Len) + int(d.payLen); n > len(body) {
		return activity{}, fmt.Errorf("ebpf: activity record of %d bytes announces %d", len(raw), headerSize+detailSize+n)
	}
	exe, body := body[:h.exeLen], body[h.exeLen:]
	p1, body := body[:d.path1Len], body[d.path1Len:]
	p2, body := body[:d.path2Len], body[d.path2Len:]
	p3, body := body[:d.path3Len], body[d.path3Len:]
	p4, body := body[:d.path4Len], body[d.path4Len:]
	payload := body[:d.payLen]

	ev.Kind = telemetry.KindOther
	if h.flags&flagNoExe == 0 {
		ev.Path = joinComponents(exe)
	}
	var f telemetry.Fields
	a := activity{}
	// path1 is components, or a path as given to a syscall (relative to
	// the directory in path2 when flagBase1 is set); path3 likewise with
	// path4.
	path1, path2 := joinComponents(p1), joinComponents(p2)
	if h.flags&flagPath1Raw != 0 {
		path1 = cString(p1)
		if h.flags&flagBase1 != 0 {
			path1, path2 = resolve(path1, p2), ""
		}
	}
	if h.flags&flagBase3 != 0 {
		path2 = resolve(cString(p3), p4)
	}
	switch h.kind {
	case recordNet:
		ev.Category = "network_connection"
		action, ok := map[uint32]string{1: "connect", 2: "accept", 3: "bind", 4: "listen"}[d.action]
		if !ok {
			return activity{}, fmt.Errorf("ebpf: unknown network action %d", d.action)
		}
		src, dst, err := addrs(d)
		if err != nil {
			return activity{}, err
		}
		f.Append("Image", ev.Path)
		f.Append("Protocol", protocol(d.arg))
		if d.action <= 2 {
			f.Append("Initiated", strconv.FormatBool(d.action == 1))
		}
		f.Append("SourceIsIpv6", strconv.FormatBool(d.family == afInet6))
		f.Append("SourceIp", src.String())
		f.Append("SourcePort", strconv.Itoa(int(d.sport)))
		if d.action <= 2 {
			f.Append("DestinationIsIpv6", strconv.FormatBool(d.family == afInet6))
			f.Append("DestinationIp", dst.String())
			f.Append("DestinationPort", strconv.Itoa(int(d.dport)))
		}
		f.Append("Action", action)
	case recordFile:
		f.Append("Image", ev.Path)
		switch d.action {
		case 1, 2, 3:
			ev.Category = "file_event"
			f.Append("TargetFilename", path1)
			f.Append("Action", [...]string{"", "create", "write", "chmod"}[d.action])
			if d.action == 3 {
				f.Append("Mode", fmt.Sprintf("%04o", d.mode&0o7777))
			}
		case 4:
			ev.Category = "file_delete"
			f.Append("TargetFilename", path1)
		case 5:
			ev.Category = "file_rename"
			f.Append("SourceFilename", path1)
			f.Append("TargetFilename", path2)
		default:
			return activity{}, fmt.Errorf("ebpf: unknown file action %d", d.action)
		}
		if h.flags&(flagPath1Truncated|flagPath2Truncated) != 0 {
			ev.Truncated = true
		}
	case recordAccess:
		ev.Category = "process_access"
		var access string
		switch d.action {
		case accessPtrace:
			access = "ptrace:" + ptraceRequest(d.arg)
		case accessVMWrite:
			access = "process_vm_writev"
		default:
			return activity{}, fmt.Errorf("ebpf: unknown access action %d", d.action)
		}
		f.Append("SourceImage", ev.Path)
		f.Append("SourceProcessId", strconv.FormatInt(ev.PID, 10))
		f.Append("TargetProcessId", strconv.FormatUint(uint64(d.targetPID), 10))
		f.Append("GrantedAccess", access)
	case recordModule:
		ev.Category = "driver_load"
		if d.action != moduleFinit && d.action != moduleInit {
			return activity{}, fmt.Errorf("ebpf: unknown module action %d", d.action)
		}
		f.Append("Image", ev.Path)
		if d.path1Len == 0 {
			path1 = "" // init_module: the image came from memory
		}
		f.Append("ImageLoaded", path1)
		f.Append("Action", map[uint32]string{moduleFinit: "finit_module", moduleInit: "init_module"}[d.action])
		f.Append("Status", status(d.ret))
	case recordMemfd:
		ev.Category = "image_load"
		f.Append("Image", ev.Path)
		f.Append("ImageLoaded", "memfd:"+path1)
		f.Append("Action", "memfd_create")
	case recordPriv:
		ev.Category = "privilege_change"
		if d.action < opSetuid || d.action > opCapset {
			return activity{}, fmt.Errorf("ebpf: unknown privilege action %d", d.action)
		}
		f.Append("Image", ev.Path)
		f.Append("Action", privActions[d.action-opSetuid])
		id := "uid"
		if d.action != opCapset && (d.action-opSetuid)&1 == 1 {
			id = "gid"
		}
		for i, prefix := range []string{"", "E", "S", "Fs"} {
			n := prefix + id
			if prefix == "" {
				n = strings.ToUpper(id[:1]) + id[1:]
			}
			f.Append("Old"+n, strconv.FormatUint(uint64(d.oldIDs[i]), 10))
			f.Append("New"+n, strconv.FormatUint(uint64(d.newIDs[i]), 10))
		}
		f.Append("OldCapEffective", fmt.Sprintf("%#x", d.oldCaps[0]))
		f.Append("NewCapEffective", fmt.Sprintf("%#x", d.newCaps[0]))
		f.Append("OldCapPermitted", fmt.Sprintf("%#x", d.oldCaps[1]))
		f.Append("NewCapPermitted", fmt.Sprintf("%#x", d.newCaps[1]))
	case recordDNS:
		if d.action != dnsSent && d.action != dnsReceived {
			return activity{}, fmt.Errorf("ebpf: unknown DNS action %d", d.action)
		}
		ev.Category = "dns_query"
		src, dst, err := addrs(d)
		if err != nil {
			return activity{}, err
		}
		proto := "udp"
		if d.arg == 6 {
			proto = "tcp"
			payload, a.dnsLengthOnly = tcpDNSMessage(payload, d.mode)
		}
		f.Append("Image", ev.Path)
		f.Append("Protocol", proto)
		f.Append("SourceIp", src.String())
		f.Append("SourcePort", strconv.Itoa(int(d.sport)))
		f.Append("DestinationIp", dst.String())
		f.Append("DestinationPort", strconv.Itoa(int(d.dport)))
		a.dns, a.dnsSent = payload, d.action == dnsSent
		if h.flags&flagPayloadTruncated != 0 {
			ev.Truncated = true
		}
	default:
		return activity{}, fmt.Errorf("ebpf: unknown record kind %d", h.kind)
	}
	ev.Fields = f
	a.ev = ev
	return a, nil
}

const (
	afInet  = 2
	afInet6 = 10
)

// addrs returns the local and remote addresses of a network record.
func addrs(d detail) (local, remote netip.Addr, err error) {
	switch d.family {
	case afInet:
		return netip.AddrFrom4([4]byte(d.saddr[:4])), netip.AddrFrom4([4]byte(d.daddr[:4])), nil
	case afInet6:
		return netip.AddrFrom16(d.saddr), netip.AddrFrom16(d.daddr), nil
	}
	return netip.Addr{}, netip.Addr{}, fmt.Errorf("ebpf: unknown address family %d", d.family)
}

func protocol(p uint32) string {
	switch p {
	case 6, 262: // 262: MPTCP (Go's listeners use it by default)
		return "tcp"
	case 17:
		return "udp"
	case 1:
		return "icmp"
	case 58:
		return "icmpv6"
	case 132:
		return "sctp"
	}
	return strconv.FormatUint(uint64(p), 10)
}

func ptraceRequest(r uint32) string {
	switch r {
	case 16:
		return "attach"
	case 0x4206:
		return "seize"
	case 4:
		return "poketext"
	case 5:
		return "pokedata"
	case 6:
		return "pokeuser"
	case 13:
		return "setregs"
	case 15:
		return "setfpregs"
	case 0x4205:
		return "setregset"
	}
	return strconv.FormatUint(uint64(r), 10)
}

// privActions names the privilege ops, from opSetuid to opCapset.
var privActions = [...]string{"setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setfsuid",
	"setfsgid", "capset"}

// resolve joins a path given to a syscall to the directory (components)
// it is relative to; an absolute path is kept, cleaned.
func resolve(p string, base []byte) string {
	if p == "" {
		return ""
	}
	if path.IsAbs(p) {
		return path.Clean(p)
	}
	return path.Join(joinComponents(base), p)
}

// status is a syscall's outcome: "success" or the errno's name.
func status(ret int64) string {
	if ret >= 0 {
		return "success"
	}
	return "failed: " + unix.ErrnoName(syscall.Errno(-ret))
}
