package pipeline

import (
	"hash/fnv"
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
	var b strings.Builder
	b.WriteString(ruleID)
	b.WriteByte(0)
	b.WriteString(ev.Host)
	b.WriteByte(0)
	if ev.Kind == telemetry.KindExec && ev.ProcessKey != "" {
		b.WriteString("process")
		b.WriteByte(0)
		b.WriteString(ev.ProcessKey)
		return uuid.NewSHA1(hitNamespace, []byte(b.String())).String()
	}
	b.WriteString(string(ev.Source))
	b.WriteByte(0)
	if _, ok := ev.Fields.Get("EventRecordID"); ok || ev.Source == telemetry.SourceAuditd {
		b.WriteString(strconv.FormatInt(ev.RecordID, 10))
	}
	b.WriteByte(0)
	b.WriteString(strconv.FormatInt(ev.Time.UnixNano(), 10))
	b.WriteByte(0)
	b.WriteString(strconv.FormatInt(ev.PID, 10))
	b.WriteByte(0)
	b.WriteString(ev.ProcessGUID)
	b.WriteByte(0)
	b.WriteString(strconv.Itoa(ev.EventID))
	b.WriteByte(0)
	h := fnv.New64a()
	for k, v := range ev.Fields.All() {
		h.Write([]byte(k))
		h.Write([]byte{0})
		h.Write([]byte(v))
		h.Write([]byte{0})
	}
	b.WriteString(strconv.FormatUint(h.Sum64(), 16))
	return uuid.NewSHA1(hitNamespace, []byte(b.String())).String()
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
		Path:            firstNonEmpty(ev.Path, ev.Field("Image"), ev.Field("NewProcessName")),
		Cmdline:         firstNonEmpty(ev.Cmdline, ev.Field("CommandLine")),
		ParentPath:      firstNonEmpty(ev.ParentPath, ev.Field("ParentImage"), ev.Field("ParentProcessName")),
		Username:        firstNonEmpty(ev.Username, ev.Field("User")),
		Source:          string(ev.Source),
	}
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

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
