package importers

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/quarry-sec/quarry/telemetry"
)

// maxAuditArgs bounds argc and argument indexes taken from a record.
const maxAuditArgs = 1 << 16

// execGroup gathers the records of one audit event (one serial).
type execGroup struct {
	serial    int64
	time      time.Time
	node      string
	line      int // line of the group's first record
	syscall   map[string]string
	hasExecve bool
	argc      int
	args      []string
	cwd       string
	proctitle string
	path0     string
	// regs are the SYSCALL record's a0…a3 (hex register values): open
	// flags, directory fds, the socketcall operation.
	regs [4]string
	// items are the PATH records (name and nametype), at most
	// maxAuditItems of them.
	items []auditItem
	// sockaddr is the SOCKADDR record's address, when the event has one.
	sockaddr    sockAddr
	hasSockaddr bool
	// module is the KERN_MODULE record's module name.
	module string
	// own is the map a SYSCALL record is read into, kept across resets
	// (no event keeps it: they copy what they take).
	own map[string]string
}

func (g *execGroup) reset(serial int64, t time.Time, node string, line int) {
	*g = execGroup{serial: serial, time: t, node: node, line: line, args: g.args[:0], items: g.items[:0], own: g.own}
}

// add folds one record's fields into the group.
func (g *execGroup) add(typ, body string) error {
	switch typ {
	case "SYSCALL":
		if g.own == nil {
			g.own = make(map[string]string, 32)
		} else {
			clear(g.own)
		}
		g.syscall = g.own
		for f, rest, ok := nextAuditField(body); ok; f, rest, ok = nextAuditField(rest) {
			switch f.key {
			case "a0", "a1", "a2", "a3": // register values: EXECVE's arguments supersede them in an exec
				g.regs[f.key[1]-'0'] = f.value
			case "comm", "exe", "key", "subj":
				g.syscall[f.key] = auditString(f)
			default:
				g.syscall[f.key] = f.value
			}
		}
	case "EXECVE":
		g.hasExecve = true
		for f, rest, ok := nextAuditField(body); ok; f, rest, ok = nextAuditField(rest) {
			if err := g.addArg(f); err != nil {
				return err
			}
		}
	case "CWD":
		for f, rest, ok := nextAuditField(body); ok; f, rest, ok = nextAuditField(rest) {
			if f.key == "cwd" {
				g.cwd = auditString(f)
			}
		}
	case "PROCTITLE":
		for f, rest, ok := nextAuditField(body); ok; f, rest, ok = nextAuditField(rest) {
			if f.key == "proctitle" {
				g.proctitle = auditString(f)
			}
		}
	case "PATH":
		var it auditItem
		for f, rest, ok := nextAuditField(body); ok; f, rest, ok = nextAuditField(rest) {
			switch f.key {
			case "name":
				if f.quoted || f.value != "(null)" {
					it.name = auditString(f)
				}
			case "nametype":
				it.nametype = f.value
			}
		}
		if g.path0 == "" {
			g.path0 = it.name
		}
		if len(g.items) < maxAuditItems {
			g.items = append(g.items, it)
		}
	case "SOCKADDR":
		for f, rest, ok := nextAuditField(body); ok; f, rest, ok = nextAuditField(rest) {
			if f.key == "saddr" {
				sa, err := decodeSockaddr(f.value)
				if err != nil {
					return fmt.Errorf("field saddr: %w", err)
				}
				g.sockaddr, g.hasSockaddr = sa, true
			}
		}
	case "KERN_MODULE":
		for f, rest, ok := nextAuditField(body); ok; f, rest, ok = nextAuditField(rest) {
			if f.key == "name" {
				g.module = auditString(f)
			}
		}
	}
	return nil
}

// addArg stores one EXECVE field: argc, aN (quoted or hex), aN_len and the
// pieces aN[M] of an argument split across fields.
func (g *execGroup) addArg(f auditField) error {
	if f.key == "argc" {
		n, err := strconv.Atoi(f.value)
		if err != nil || n < 0 || n > maxAuditArgs {
			return fmt.Errorf("field argc: %q is not a usable count", f.value)
		}
		g.argc = n
		return nil
	}
	if len(f.key) < 2 || f.key[0] != 'a' {
		return nil
	}
	num, piece := f.key[1:], false
	if i := strings.IndexByte(num, '['); i >= 0 {
		num, piece = num[:i], true
	} else if strings.HasSuffix(num, "_len") {
		return nil
	}
	idx, err := strconv.Atoi(num)
	if err != nil || idx < 0 || idx >= maxAuditArgs {
		return fmt.Errorf("field %s: not an argument index", f.key)
	}
	for len(g.args) <= idx {
		g.args = append(g.args, "")
	}
	if piece {
		g.args[idx] += auditString(f)
	} else {
		g.args[idx] = auditString(f)
	}
	return nil
}

// finish returns the group's event when it is an exec or one of the
// audited activities (auditdactivity.go).
func (g *execGroup) finish(cfg *config) (telemetry.Event, bool) {
	if g.isExec() {
		return g.event(cfg), true
	}
	return g.activity(cfg)
}

// isExec reports whether the group is a successful execve.
func (g *execGroup) isExec() bool {
	if g.syscall == nil {
		return false
	}
	if g.syscall["success"] == "no" {
		return false
	}
	return g.hasExecve || isExecveSyscall(g.syscall["arch"], g.syscall["syscall"])
}

// isExecveSyscall tells execve and execveat by number for the common
// architectures.
func isExecveSyscall(arch, nr string) bool {
	name := syscallName(arch, nr)
	return name == "execve" || name == "execveat"
}

// event builds the exec Event of the group. Fields hold the SYSCALL fields
// by their names (pid, ppid, uid, auid, comm, exe, key…), the arguments as
// a0…aN, argc, cwd, proctitle, name (PATH item 0) and type=EXECVE.
func (g *execGroup) event(cfg *config) telemetry.Event {
	e := telemetry.NewEvent(telemetry.KindExec, telemetry.SourceAuditd)
	e.Category = "process_creation"
	g.fillProcess(&e, cfg)
	sc := g.syscall
	args := g.args
	if g.argc > 0 && g.argc < len(args) {
		args = args[:g.argc]
	}
	if len(args) == 0 && g.proctitle != "" {
		args = strings.Split(g.proctitle, "\x00")
	}
	e.Args = append([]string(nil), args...)
	e.Cmdline = strings.Join(e.Args, " ")

	f := telemetry.FieldsFromMap(sc)
	for i, a := range args {
		f.Set("a"+strconv.Itoa(i), a)
	}
	if g.argc > 0 {
		f.Set("argc", strconv.Itoa(g.argc))
	}
	f.Set("type", "EXECVE")
	if g.cwd != "" {
		f.Set("cwd", g.cwd)
	}
	if g.proctitle != "" {
		f.Set("proctitle", strings.ReplaceAll(g.proctitle, "\x00", " "))
	}
	if g.path0 != "" {
		f.Set("name", g.path0)
	}
	e.Fields = f
	return e
}

// auditID reads a uid/gid; 4294967295 ("unset", as auid of daemons) is
// Unknown.
func auditID(s string) int64 {
	n := parseID(s)
	if n == 4294967295 {
		return telemetry.Unknown
	}
	return n
}
