//go:build linux

package audit

import (
	"bytes"
	"encoding/binary"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/quarry-sec/quarry/telemetry/importers"
)

// RuleKey is the key (auditctl -k) of every rule Quarry adds: its records
// say key="quarry-live", and `auditctl -D -k quarry-live` removes rules a
// killed collector left behind.
const RuleKey = "quarry-live"

// ruleField is one field comparison of a rule: field op value.
type ruleField struct {
	field, op, value uint32
}

// rule is one syscall-exit rule: the syscalls and the comparisons that
// must all hold.
type rule struct {
	syscalls []string
	fields   []ruleField
}

// ruleDataLen is the fixed part of struct audit_rule_data: flags, action,
// field_count, mask[64], fields[64], values[64], fieldflags[64], buflen.
const ruleDataLen = 4*3 + 4*unix.AUDIT_BITMASK_SIZE + 3*4*unix.AUDIT_MAX_FIELDS + 4

// marshal encodes the rule for arch, with the rule's key and "pid !=
// self" (Quarry's own syscalls, such as its event store's writes, would
// otherwise feed back into its capture). ok is false when arch has none of
// the rule's syscalls.
func (r rule) marshal(arch uint32, self int) (b []byte, ok bool) {
	var mask [unix.AUDIT_BITMASK_SIZE]uint32
	for _, name := range r.syscalls {
		if nr, found := importers.AuditSyscall(arch, name); found && nr/32 < len(mask) {
			mask[nr/32] |= 1 << (nr % 32)
			ok = true
		}
	}
	if !ok {
		return nil, false
	}
	fields := append([]ruleField{
		{unix.AUDIT_ARCH, unix.AUDIT_EQUAL, arch},
		{unix.AUDIT_PID, unix.AUDIT_NOT_EQUAL, uint32(self)},
	}, r.fields...)
	fields = append(fields, ruleField{unix.AUDIT_FILTERKEY, unix.AUDIT_EQUAL, uint32(len(RuleKey))})
	b = make([]byte, ruleDataLen+len(RuleKey))
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], unix.AUDIT_FILTER_EXIT)
	ne.PutUint32(b[4:], unix.AUDIT_ALWAYS)
	ne.PutUint32(b[8:], uint32(len(fields)))
	off := 12
	for _, m := range mask {
		ne.PutUint32(b[off:], m)
		off += 4
	}
	for i, f := range fields {
		ne.PutUint32(b[off+4*i:], f.field)
		ne.PutUint32(b[off+4*unix.AUDIT_MAX_FIELDS+4*i:], f.value)
		ne.PutUint32(b[off+8*unix.AUDIT_MAX_FIELDS+4*i:], f.op)
	}
	off += 12 * unix.AUDIT_MAX_FIELDS
	ne.PutUint32(b[off:], uint32(len(RuleKey)))
	copy(b[off+4:], RuleKey)
	return b, true
}

// openWriteFlags are the open flags that make an open a write or a create.
const openWriteFlags = unix.O_WRONLY | unix.O_RDWR | unix.O_CREAT | unix.O_TRUNC

// rulesFor returns the rules of the captures.
func rulesFor(captures []string) []rule {
	var out []rule
	for _, c := range captures {
		switch c {
		case CaptureNetwork:
			out = append(out,
				rule{syscalls: []string{"connect", "bind", "accept", "accept4"}},
				// i386's socketcall: bind 2, connect 3, listen 4, accept 5;
				// accept4 18 (a listen has no address and yields no event).
				rule{syscalls: []string{"socketcall"}, fields: []ruleField{
					{unix.AUDIT_ARG0, unix.AUDIT_GREATER_THAN_OR_EQUAL, 2}, {unix.AUDIT_ARG0, unix.AUDIT_LESS_THAN_OR_EQUAL, 5}}},
				rule{syscalls: []string{"socketcall"}, fields: []ruleField{{unix.AUDIT_ARG0, unix.AUDIT_EQUAL, 18}}})
		case CaptureFile:
			out = append(out,
				rule{syscalls: []string{"creat", "openat2", "unlink", "unlinkat", "rename", "renameat", "renameat2",
					"chmod", "fchmodat", "fchmodat2"}},
				// Opens only when they may write or create: reads are most
				// opens, and the records of one cost far more than a filter.
				rule{syscalls: []string{"open"}, fields: []ruleField{{unix.AUDIT_ARG1, unix.AUDIT_BIT_MASK, openWriteFlags}}},
				rule{syscalls: []string{"openat"}, fields: []ruleField{{unix.AUDIT_ARG2, unix.AUDIT_BIT_MASK, openWriteFlags}}})
		case CaptureProcessAccess:
			// Only the requests that read or change another process: a
			// debugger's or strace's stream of PEEKs and GETREGS is not.
			for _, req := range importers.PtraceRequests() {
				out = append(out, rule{syscalls: []string{"ptrace"}, fields: []ruleField{{unix.AUDIT_ARG0, unix.AUDIT_EQUAL, uint32(req)}}})
			}
		case CaptureDriverLoad:
			out = append(out, rule{syscalls: []string{"init_module", "finit_module"}})
		}
	}
	return out
}

// arches returns the audit architectures to add rules for: the machine's
// own and, on x86-64, i386 (32-bit programs run there).
func arches() []uint32 {
	switch runtime.GOARCH {
	case "amd64":
		return []uint32{unix.AUDIT_ARCH_X86_64, unix.AUDIT_ARCH_I386}
	case "arm64":
		return []uint32{unix.AUDIT_ARCH_AARCH64}
	case "386":
		return []uint32{unix.AUDIT_ARCH_I386}
	}
	return nil
}

// ruleKey returns the key of an encoded rule (struct audit_rule_data as
// AUDIT_LIST_RULES sends it), "" when it has none.
func ruleKey(b []byte) string {
	if len(b) < ruleDataLen {
		return ""
	}
	ne := binary.NativeEndian
	n := int(ne.Uint32(b[8:]))
	off := 12 + 4*unix.AUDIT_BITMASK_SIZE
	buf := b[ruleDataLen:]
	pos := 0
	for i := 0; i < n && i < unix.AUDIT_MAX_FIELDS; i++ {
		field := ne.Uint32(b[off+4*i:])
		value := int(ne.Uint32(b[off+4*unix.AUDIT_MAX_FIELDS+4*i:]))
		if !stringField(field) {
			continue
		}
		if value < 0 || pos+value > len(buf) {
			return ""
		}
		if field == unix.AUDIT_FILTERKEY {
			return string(bytes.TrimRight(buf[pos:pos+value], "\x00"))
		}
		pos += value
	}
	return ""
}

// stringField reports whether a rule field's value is a length of a
// string in the rule's buffer.
func stringField(f uint32) bool {
	switch f {
	case unix.AUDIT_WATCH, unix.AUDIT_DIR, unix.AUDIT_FILTERKEY, unix.AUDIT_SUBJ_USER, unix.AUDIT_SUBJ_ROLE,
		unix.AUDIT_SUBJ_TYPE, unix.AUDIT_SUBJ_SEN, unix.AUDIT_SUBJ_CLR, unix.AUDIT_OBJ_USER, unix.AUDIT_OBJ_ROLE,
		unix.AUDIT_OBJ_TYPE, unix.AUDIT_OBJ_LEV_LOW, unix.AUDIT_OBJ_LEV_HIGH, unix.AUDIT_EXE:
		return true
	}
	return false
}
