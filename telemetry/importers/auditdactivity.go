package importers

import (
	"fmt"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/quarry-sec/quarry/telemetry"
)

// Audit events other than execve: connect, bind and accept (SYSCALL with a
// SOCKADDR), opens for writing or creating, unlink, rename (SYSCALL with
// its PATH records and CWD) and kernel module loads (SYSCALL with
// KERN_MODULE). Each becomes one Event of the Sigma category and the
// Sysmon-like field names the live eBPF collector uses (DestinationIp,
// TargetFilename, ImageLoaded…), so the same tables and rules read both.

// maxAuditItems bounds the PATH records kept of one event (a rename has
// four or five; more are not used).
const maxAuditItems = 16

// auditItem is one PATH record: the name as the syscall saw it and the
// kernel's nametype (NORMAL, PARENT, CREATE, DELETE…).
type auditItem struct {
	name, nametype string
}

// Address families of a SOCKADDR.
const (
	afUnix  = 1
	afInet  = 2
	afInet6 = 10
)

// sockAddr is a decoded struct sockaddr.
type sockAddr struct {
	family int
	addr   netip.Addr // AF_INET, AF_INET6
	port   int
	path   string // AF_UNIX: the socket's path; an abstract name starts with "@"
}

// decodeSockaddr decodes a SOCKADDR record's saddr: the struct sockaddr's
// bytes in hex. The family is in host order (little-endian on the machines
// audit logs mostly come from; a big-endian family is recognized too); the
// port and addresses are in network order. A family other than AF_UNIX,
// AF_INET and AF_INET6 is returned with no address.
func decodeSockaddr(s string) (sockAddr, error) {
	var sa sockAddr
	b, ok := decodeHex(s)
	if !ok {
		return sa, fmt.Errorf("%q is not a hex struct sockaddr", clip(s))
	}
	if len(b) < 2 {
		return sa, fmt.Errorf("a struct sockaddr of %d bytes has no family", len(b))
	}
	sa.family = int(b[0]) | int(b[1])<<8
	if be := int(b[0])<<8 | int(b[1]); !knownFamily(sa.family) && knownFamily(be) {
		sa.family = be
	}
	need := 0
	switch sa.family {
	case afInet:
		need = 8
	case afInet6:
		need = 24
	}
	if len(b) < need {
		return sa, fmt.Errorf("a struct sockaddr of family %d has %d bytes, fewer than its %d", sa.family, len(b), need)
	}
	switch sa.family {
	case afInet:
		sa.port = int(b[2])<<8 | int(b[3])
		sa.addr = netip.AddrFrom4([4]byte(b[4:8]))
	case afInet6:
		sa.port = int(b[2])<<8 | int(b[3])
		sa.addr = netip.AddrFrom16([16]byte(b[8:24]))
	case afUnix:
		p := b[2:]
		if len(p) > 0 && p[0] == 0 { // abstract: the name is every byte after the NUL
			sa.path = "@" + strings.TrimRight(string(p[1:]), "\x00")
			if sa.path == "@" {
				sa.path = ""
			}
		} else {
			if i := strings.IndexByte(string(p), 0); i >= 0 {
				p = p[:i]
			}
			sa.path = string(p)
		}
	}
	return sa, nil
}

func knownFamily(f int) bool { return f == afUnix || f == afInet || f == afInet6 }

// clip shortens a value quoted in an error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// Syscall numbers of the audited calls on the architectures audit logs
// mostly come from, by the arch field's value.
var auditSyscalls = map[string]map[string]string{
	"c000003e": { // x86_64
		"2": "open", "85": "creat", "257": "openat", "437": "openat2",
		"87": "unlink", "263": "unlinkat", "82": "rename", "264": "renameat", "316": "renameat2",
		"42": "connect", "43": "accept", "288": "accept4", "49": "bind",
		"175": "init_module", "313": "finit_module", "59": "execve", "322": "execveat",
		"90": "chmod", "268": "fchmodat", "452": "fchmodat2", "101": "ptrace",
	},
	"c00000b7": { // aarch64
		"56": "openat", "437": "openat2", "35": "unlinkat", "38": "renameat", "276": "renameat2",
		"203": "connect", "202": "accept", "242": "accept4", "200": "bind",
		"105": "init_module", "273": "finit_module", "221": "execve", "281": "execveat",
		"53": "fchmodat", "452": "fchmodat2", "117": "ptrace",
	},
	"40000003": { // i386
		"5": "open", "8": "creat", "295": "openat", "437": "openat2",
		"10": "unlink", "301": "unlinkat", "38": "rename", "302": "renameat", "353": "renameat2",
		"362": "connect", "364": "accept4", "361": "bind", "102": "socketcall",
		"128": "init_module", "350": "finit_module", "11": "execve", "358": "execveat",
		"15": "chmod", "306": "fchmodat", "452": "fchmodat2", "26": "ptrace",
	},
}

// syscallName returns the name of a SYSCALL record's syscall: looked up by
// number for a known arch, or as written when the log is interpreted
// (syscall=connect). An unknown number comes back as it is.
func syscallName(arch, nr string) string {
	if n, ok := auditSyscalls[arch][nr]; ok {
		return n
	}
	return nr
}

// ptraceAccess names the ptrace requests that read or change another
// process (attach, seize, pokes and register writes) as the eBPF
// collector's GrantedAccess does; other requests are passed over.
var ptraceAccess = map[uint64]string{
	16: "attach", 0x4206: "seize", 4: "poketext", 5: "pokedata", 6: "pokeuser",
	13: "setregs", 15: "setfpregs", 0x4205: "setregset",
}

// PtraceRequests are the ptrace requests that become process_access
// events, for filters (audit rules) that select them.
func PtraceRequests() []uint64 {
	out := make([]uint64, 0, len(ptraceAccess))
	for r := range ptraceAccess {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

// AuditSyscall returns the number of the named syscall on the audit
// architecture arch (AUDIT_ARCH_X86_64, _I386, _AARCH64), as audit rules
// and SYSCALL records name them; ok is false when that architecture has no
// such call.
func AuditSyscall(arch uint32, name string) (nr int, ok bool) {
	for num, n := range auditSyscalls[strconv.FormatUint(uint64(arch), 16)] {
		if n == name {
			nr, err := strconv.Atoi(num)
			return nr, err == nil
		}
	}
	return 0, false
}

// register reads a0…a3 (hex); ok is false when absent or not hex.
func (g *execGroup) register(i int) (uint64, bool) {
	n, err := strconv.ParseUint(g.regs[i], 16, 64)
	return n, err == nil
}

// atFDCWD reports whether a directory-fd register holds AT_FDCWD (-100),
// as a 32- or 64-bit value.
func (g *execGroup) atFDCWD(i int) bool {
	n, ok := g.register(i)
	return ok && int32(uint32(n)) == -100
}

// Open flags (the generic values; x86, arm64 and i386 share them).
const (
	oAccMode = 0x3
	oCreat   = 0x40
	oTrunc   = 0x200
)

// activity builds the Event of a non-exec group: ok is false when the group
// is not one of the audited activities (a read-only open, a failed unlink,
// a connect with no address…).
func (g *execGroup) activity(cfg *config) (telemetry.Event, bool) {
	sc := g.syscall
	if sc == nil {
		return telemetry.Event{}, false
	}
	name := syscallName(sc["arch"], sc["syscall"])
	if name == "socketcall" { // i386: the operation is a0
		if op, ok := g.register(0); ok {
			name = map[uint64]string{2: "bind", 3: "connect", 5: "accept", 18: "accept4"}[op]
		}
	}
	success := sc["success"] != "no"
	var f telemetry.Fields
	e := telemetry.NewEvent(telemetry.KindOther, telemetry.SourceAuditd)
	f.Append("Image", sc["exe"])
	switch name {
	case "connect", "bind", "accept", "accept4":
		// A non-blocking connect returns EINPROGRESS: the attempt is made.
		if !success && !(name == "connect" && sc["exit"] == "-115") {
			return e, false
		}
		if !g.hasSockaddr || !knownFamily(g.sockaddr.family) {
			return e, false
		}
		e.Category = "network_connection"
		action := strings.TrimSuffix(name, "4")
		sa := g.sockaddr
		f.Append("Family", strconv.Itoa(sa.family))
		if sa.family == afUnix {
			f.Append("SocketPath", sa.path)
			f.Append("Action", action)
			break
		}
		v6 := strconv.FormatBool(sa.family == afInet6)
		ip, port := sa.addr.String(), strconv.Itoa(sa.port)
		switch action {
		case "connect":
			f.Append("Initiated", "true")
			f.Append("DestinationIsIpv6", v6)
			f.Append("DestinationIp", ip)
			f.Append("DestinationPort", port)
		case "accept": // the peer, which initiated: Sysmon's source
			f.Append("Initiated", "false")
			f.Append("SourceIsIpv6", v6)
			f.Append("SourceIp", ip)
			f.Append("SourcePort", port)
		case "bind":
			f.Append("SourceIsIpv6", v6)
			f.Append("SourceIp", ip)
			f.Append("SourcePort", port)
		}
		f.Append("Action", action)
	case "open", "openat", "openat2", "creat":
		if !success {
			return e, false
		}
		target, action := g.openTarget(name)
		if target == "" {
			return e, false
		}
		e.Category = "file_event"
		f.Append("TargetFilename", target)
		f.Append("Action", action)
	case "unlink", "unlinkat":
		if !success {
			return e, false
		}
		del := g.item("DELETE", false)
		if del < 0 {
			return e, false
		}
		e.Category = "file_delete"
		f.Append("TargetFilename", g.itemPath(del, name == "unlink" || g.atFDCWD(0)))
	case "rename", "renameat", "renameat2":
		if !success {
			return e, false
		}
		src, dst := g.item("DELETE", false), g.item("CREATE", false)
		if src < 0 || dst < 0 {
			return e, false
		}
		e.Category = "file_rename"
		f.Append("SourceFilename", g.itemPath(src, name == "rename" || g.atFDCWD(0)))
		f.Append("TargetFilename", g.itemPath(dst, name == "rename" || g.atFDCWD(2)))
	case "chmod", "fchmodat", "fchmodat2":
		if !success {
			return e, false
		}
		i := g.item("", true)
		if i < 0 {
			return e, false
		}
		modeReg := 1 // chmod(path, mode); fchmodat(dirfd, path, mode)
		if name != "chmod" {
			modeReg = 2
		}
		e.Category = "file_event"
		f.Append("TargetFilename", g.itemPath(i, name == "chmod" || g.atFDCWD(0)))
		f.Append("Action", "chmod")
		if mode, ok := g.register(modeReg); ok {
			f.Append("Mode", fmt.Sprintf("%04o", mode&0o7777))
		}
	case "ptrace":
		req, ok1 := g.register(0)
		target, ok2 := g.register(1)
		access := ptraceAccess[req]
		if !success || !ok1 || !ok2 || access == "" {
			return e, false
		}
		e.Category = "process_access"
		f = telemetry.Fields{} // SourceImage, not Image, as the eBPF collector names it
		f.Append("SourceImage", sc["exe"])
		f.Append("SourceProcessId", sc["pid"])
		f.Append("TargetProcessId", strconv.FormatUint(target&0xffffffff, 10))
		f.Append("GrantedAccess", "ptrace:"+access)
	case "init_module", "finit_module":
		e.Category = "driver_load"
		loaded := ""
		if i := g.item("", true); i >= 0 {
			loaded = g.itemPath(i, true)
		}
		if loaded == "" {
			loaded = g.module
		}
		f.Append("ImageLoaded", loaded)
		if g.module != "" {
			f.Append("ModuleName", g.module)
		}
		f.Append("Action", name)
		status := "success"
		if !success {
			status = "failed: exit=" + sc["exit"]
		}
		f.Append("Status", status)
	default:
		return e, false
	}
	g.fillProcess(&e, cfg)
	// The audit record's own fields, by their names, after the Sysmon-like
	// ones: type, syscall (as written), success, exit, key, and the
	// process's ids.
	f.Append("type", "SYSCALL")
	for _, k := range [...]string{"syscall", "success", "exit", "pid", "ppid", "uid", "euid", "auid", "ses", "tty", "comm", "exe", "key"} {
		if v, ok := sc[k]; ok {
			f.Append(k, v)
		}
	}
	if g.cwd != "" {
		f.Append("cwd", g.cwd)
	}
	if g.proctitle != "" {
		f.Append("proctitle", strings.ReplaceAll(g.proctitle, "\x00", " "))
	}
	e.Fields = f
	return e, true
}

// fillProcess sets the acting process's typed fields from the SYSCALL
// record and the group's header.
func (g *execGroup) fillProcess(e *telemetry.Event, cfg *config) {
	sc := g.syscall
	e.Time = g.time
	e.RecordID = g.serial
	e.Host = cfg.hostFor(g.node)
	e.PID = parseID(sc["pid"])
	e.PPID = parseID(sc["ppid"])
	e.UID = auditID(sc["uid"])
	e.EUID = auditID(sc["euid"])
	e.GID = auditID(sc["gid"])
	e.EGID = auditID(sc["egid"])
	e.AUID = auditID(sc["auid"])
	e.Comm = sc["comm"]
	e.Path = sc["exe"]
	e.Cwd = g.cwd
}

// openTarget returns the file an open wrote or created and the action
// (create, write), or "" for an open that neither writes nor creates.
func (g *execGroup) openTarget(name string) (string, string) {
	relToCwd := name == "open" || name == "creat" || g.atFDCWD(0)
	if i := g.item("CREATE", false); i >= 0 {
		return g.itemPath(i, relToCwd), "create"
	}
	var flags uint64
	switch name {
	case "open":
		flags, _ = g.register(1)
	case "openat":
		flags, _ = g.register(2)
	case "creat":
		flags = oCreat | oTrunc | 1
	default: // openat2: the flags are behind a pointer
		return "", ""
	}
	if flags&(oAccMode|oCreat|oTrunc) == 0 {
		return "", ""
	}
	if i := g.item("", true); i >= 0 {
		return g.itemPath(i, relToCwd), "write"
	}
	return "", ""
}

// item returns the index of the first PATH record of that nametype (any
// nametype but PARENT when notParent is set) that has a name, or -1.
func (g *execGroup) item(nametype string, notParent bool) int {
	for i, it := range g.items {
		if it.name == "" {
			continue
		}
		if notParent && it.nametype != "PARENT" || !notParent && it.nametype == nametype {
			return i
		}
	}
	return -1
}

// itemPath returns a PATH record's name, made absolute against the CWD
// record when the syscall resolved it against the working directory
// (relToCwd); a name relative to another directory fd is kept as written,
// audit not recording that directory.
func (g *execGroup) itemPath(i int, relToCwd bool) string {
	n := g.items[i].name
	switch {
	case path.IsAbs(n):
		return path.Clean(n)
	case relToCwd && path.IsAbs(g.cwd):
		return path.Join(g.cwd, n)
	}
	return n
}
