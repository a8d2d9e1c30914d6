package intel

import (
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/quarry-sec/quarry/telemetry"
)

// hitNamespace makes the ids of hits on stored events: the same indicator
// of the same feed found in the same field of the same event always gets the
// same id, so matching again (a retried batch, a second hunt) adds nothing.
var hitNamespace = uuid.MustParse("0b8f4d2c-7e61-4a3b-9d15-c2e6f08a4b71")

// hitID returns the id of a hit of m on the stored event eid of host (a
// random one when the event is not stored).
func hitID(host string, eid int64, m *Match) string {
	if eid <= 0 {
		return uuid.NewString()
	}
	key := strings.Join([]string{host, strconv.FormatInt(eid, 10), string(m.Type), m.Indicator, m.Source, m.Field}, "\x00")
	return uuid.NewSHA1(hitNamespace, []byte(key)).String()
}

// Badge is how an IoC hit is named wherever hits are listed (its rule_title
// in the event store's hits): "IOC " and the indicator.
func Badge(indicator string) string { return "IOC " + indicator }

// Severity is an IoC hit's severity, from the indicator's confidence: high
// from 75, medium below (an indicator found is always worth an alert).
func Severity(confidence int) string {
	if confidence >= 75 {
		return "high"
	}
	return "medium"
}

// ConfidenceLevel names a 0–100 confidence as the hits' low, medium or
// high.
func ConfidenceLevel(confidence int) string {
	switch {
	case confidence >= 75:
		return "high"
	case confidence >= 40:
		return "medium"
	}
	return "low"
}

// Records returns the hit as rows of the event store's hits, one per
// ATT&CK technique the intel links it to (one row without a technique when
// it links none), of kind ioc (rule_source intel), so that IoC hits join
// incidents, the process tree and the fleet's detections by the path IoA
// hits take. The rule is the indicator: rule_id "type:value", rule_title
// its Badge, rule_author the feed. ev is the event the hit is on; l (nil:
// none) names the techniques and their tactics.
func (l *Linker) Records(h *telemetry.IOCSighting, ev *telemetry.Event) []telemetry.Hit {
	desc := "Indicator " + string(h.Type) + " " + h.Indicator + " of intel feed " + h.Source + " found in " +
		h.Field + ": " + h.Value
	if h.Context != "" {
		desc += "; " + h.Context
	}
	base := telemetry.Hit{
		HitID:       h.HitID,
		Time:        h.Time,
		Host:        h.Host,
		RuleID:      string(h.Type) + ":" + h.Indicator,
		RuleTitle:   Badge(h.Indicator),
		RuleAuthor:  h.Source,
		RuleSource:  telemetry.RuleSourceIntel,
		Severity:    Severity(h.Confidence),
		Confidence:  ConfidenceLevel(h.Confidence),
		Description: desc,
		Recommendations: "Check the process and what it reached against the feed's context; isolate the host " +
			"and block the indicator when the hit holds.",
		EID:  h.EID,
		PID:  h.PID,
		Path: h.Path,
	}
	if ev != nil {
		base.Cmdline, base.ParentPath, base.Username = ev.Cmdline, ev.ParentPath, ev.Username
		base.Source = string(ev.Source)
		if base.Path == "" {
			base.Path = ev.Path
		}
	}
	if len(h.Techniques) == 0 {
		return []telemetry.Hit{base}
	}
	out := make([]telemetry.Hit, 0, len(h.Techniques))
	for _, id := range h.Techniques {
		rec := base
		rec.TechniqueID = id
		if l != nil && l.kb != nil {
			if t, _, ok := l.kb.Resolve(id); ok {
				rec.TechniqueID, rec.TechniqueName, rec.Tactic = t.ID, t.Name, strings.Join(t.Tactics, ",")
			}
		}
		out = append(out, rec)
	}
	return out
}
