package pipeline

import (
	"crypto/sha1"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/telemetry"
)

// hitNamespace makes hit ids: a hit of one rule on one event always gets the
// same id, so detecting again over the same events adds no duplicates.
var hitNamespace = uuid.MustParse("6f1c2a4e-3b7d-4f8a-9c0e-51a7d2b8e9f3")

// HitID returns the hit's id: a name-based (v5) UUID of the rule and what
// the hit is on. For a process start stored with its identity, that is the
// process (ProcessKey): a process recorded by two sources (Sysmon EID 1 and
// Security 4688) is one process, and one rule's hits on it are one hit. For
// any other event it is the event's content: host, source, time, pid, GUID,
// event ID, the record id when the source numbers its records for real
// (Windows EventRecordID, audit serial; not a line number) and a hash of its
// fields, so the same record read again, from any file, gives the same id.
func HitID(ruleID string, ev *telemetry.Event) string {
	// The name is built on the stack for typical events; hashing the
	// fields inline (FNV-1a, as hash/fnv computes it) spares a copy of
	// every name and value that hash.Hash's Write([]byte) would make.
	var buf [256]byte
	b := append(buf[:0], hitNamespace[:]...)
	b = append(b, ruleID...)
	b = append(b, 0)
	var id [36]byte
	return string(appendV5(id[:0], AppendEventKey(b, ev)))
}

// AppendEventKey appends the event's part of its hits' ids (all HitID
// names but the rule's ID) to b. HitIDOf(rule, key) is HitID(rule, ev):
// a caller with several hits on one event works this part (a hash of all
// its fields) out once.
func AppendEventKey(b []byte, ev *telemetry.Event) []byte {
	b = append(b, ev.Host...)
	b = append(b, 0)
	if ev.Kind == telemetry.KindExec && ev.ProcessKey != "" {
		b = append(b, "process\x00"...)
		return append(b, ev.ProcessKey...)
	}
	b = append(b, ev.Source...)
	b = append(b, 0)
	if _, ok := ev.Fields.Get("EventRecordID"); ok || ev.Source == telemetry.SourceAuditd {
		b = strconv.AppendInt(b, ev.RecordID, 10)
	}
	b = append(b, 0)
	b = strconv.AppendInt(b, ev.Time.UnixNano(), 10)
	b = append(b, 0)
	b = strconv.AppendInt(b, ev.PID, 10)
	b = append(b, 0)
	b = append(b, ev.ProcessGUID...)
	b = append(b, 0)
	b = strconv.AppendInt(b, int64(ev.EventID), 10)
	b = append(b, 0)
	return strconv.AppendUint(b, fieldsHash(ev.Fields.List()), 16)
}

// HitIDOf returns the id of a hit of rule ruleID on the event whose key
// is eventKey (AppendEventKey).
func HitIDOf(ruleID string, eventKey []byte) string {
	var id [36]byte
	return string(AppendHitIDOf(id[:0], ruleID, eventKey))
}

// AppendHitIDOf appends HitIDOf(ruleID, eventKey) to dst (36 bytes). The
// name is hashed from the stack for typical events: no hash.Hash, no
// digest slice and no string are allocated per hit.
func AppendHitIDOf(dst []byte, ruleID string, eventKey []byte) []byte {
	var buf [320]byte
	b := append(buf[:0], hitNamespace[:]...)
	b = append(b, ruleID...)
	b = append(b, 0)
	return appendV5(dst, append(b, eventKey...))
}

// appendV5 appends the text of the name-based (version 5, SHA-1) UUID whose
// namespace and name are nsName (the namespace's 16 bytes, then the name):
// the value uuid.NewSHA1(namespace, name).String() gives.
func appendV5(dst, nsName []byte) []byte {
	sum := sha1.Sum(nsName)
	sum[6] = sum[6]&0x0f | 0x50 // version 5
	sum[8] = sum[8]&0x3f | 0x80 // RFC 4122 variant
	const hexDigits = "0123456789abcdef"
	for i, c := range sum[:16] {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hexDigits[c>>4], hexDigits[c&15])
	}
	return dst
}

// FNV-1a, 64 bits (the parameters of hash/fnv's New64a).
const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// fieldsHash is the FNV-1a hash of every field's name and value, each
// followed by a 0 byte.
func fieldsHash(fs []telemetry.Field) uint64 {
	h := uint64(fnvOffset64)
	for i := range fs {
		for _, s := range [2]string{fs[i].Name, fs[i].Value} {
			for j := 0; j < len(s); j++ {
				h ^= uint64(s[j])
				h *= fnvPrime64
			}
			h *= fnvPrime64 // ^= 0 changes nothing
		}
	}
	return h
}

// Records turns a hit into its stored rows: one per technique of the rule
// (one row with an empty technique when the rule names none). eid is the
// event's id in the store, 0 when the event is not stored. Each row's tactic
// is the rule's tactics that its technique belongs to in kb (all the rule's
// tactics when kb is nil or knows no such pair).
func Records(h detections.Hit, eid int64, kb *attack.KB) []telemetry.Hit {
	r, ev := h.Rule, h.Event
	base := telemetry.Hit{
		HitID:           HitID(r.ID, ev),
		Time:            h.Time,
		Host:            ev.Host,
		RuleID:          r.ID,
		RuleTitle:       r.Title,
		RuleAuthor:      r.Author,
		RuleSource:      string(r.Source),
		Severity:        r.Severity.String(),
		Confidence:      r.Confidence,
		Description:     r.Description,
		Recommendations: r.Recommendations,
		EID:             eid,
		PID:             ev.PID,
		Source:          string(ev.Source),
	}
	base.Path, base.Cmdline, base.ParentPath, base.Username = EventColumns(ev)
	if base.Time.IsZero() {
		base.Time = ev.Time
	}
	if len(h.Techniques) == 0 {
		base.Tactic = tacticList(h.Tactics)
		return []telemetry.Hit{base}
	}
	out := make([]telemetry.Hit, 0, len(h.Techniques))
	for _, t := range h.Techniques {
		rec := base
		rec.TechniqueID = t.CurrentID()
		rec.TechniqueName = t.Name
		rec.Tactic = tacticsOf(kb, rec.TechniqueID, h.Tactics)
		out = append(out, rec)
	}
	return out
}

// EventColumns returns the process columns of a hit row on ev: its path,
// command line, parent's path and user, from the event's typed fields or,
// when those are empty, its own (Sysmon's, Security 4688's) fields.
func EventColumns(ev *telemetry.Event) (path, cmdline, parentPath, username string) {
	path, cmdline, parentPath, username = ev.Path, ev.Cmdline, ev.ParentPath, ev.Username
	// Fields are looked up only for what the typed fields lack.
	if path == "" {
		path = firstField(ev, "Image", "NewProcessName")
	}
	if cmdline == "" {
		cmdline = firstField(ev, "CommandLine")
	}
	if parentPath == "" {
		parentPath = firstField(ev, "ParentImage", "ParentProcessName")
	}
	if username == "" {
		username = firstField(ev, "User")
	}
	return path, cmdline, parentPath, username
}

// firstField returns the first non-empty value of the named fields of ev.
func firstField(ev *telemetry.Event, names ...string) string {
	for _, n := range names {
		if v := ev.Field(n); v != "" {
			return v
		}
	}
	return ""
}

// tacticsOf returns the tactics of ts that technique belongs to.
func tacticsOf(kb *attack.KB, technique string, ts []detections.Tactic) string {
	if kb == nil {
		return tacticList(ts)
	}
	var names []string
	for _, t := range ts {
		for _, pair := range kb.TechniqueTacticsOf(technique) {
			if pair.Tactic == t.ShortName {
				names = append(names, t.ShortName)
				break
			}
		}
	}
	if len(names) == 0 {
		return tacticList(ts)
	}
	return strings.Join(names, ",")
}

func tacticList(ts []detections.Tactic) string {
	names := make([]string, 0, len(ts))
	for _, t := range ts {
		names = append(names, t.ShortName)
	}
	return strings.Join(names, ",")
}
