package ioa

import (
	"context"
	"strings"
	"time"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/tables"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

var hitColumns = []tables.Column{
	{Name: "hit_id", Type: tables.Text, Description: "Hit id (UUID); the same for every technique row of one hit", Index: true},
	{Name: "time", Type: tables.BigInt, Description: "When the detected event happened, UNIX seconds", Additional: true},
	{Name: "host_identifier", Type: tables.Text, Description: "Host of the event", Additional: true},
	{Name: "rule_id", Type: tables.Text, Description: "The rule's id", Additional: true},
	{Name: "rule_title", Type: tables.Text, Description: "The rule's title"},
	{Name: "rule_author", Type: tables.Text, Description: "The rule's author (SigmaHQ's DRL requires showing it)"},
	{Name: "rule_source", Type: tables.Text, Description: "builtin (Quarry's IoA pack), custom, sigma or correlation"},
	{Name: "technique_id", Type: tables.Text, Description: "ATT&CK technique as the rule names it (one row per technique of the rule); 'untagged' when the rule names none", Index: true},
	{Name: "technique_name", Type: tables.Text, Description: "ATT&CK technique name in attack_version"},
	{Name: "tactic", Type: tables.Text, Description: "ATT&CK tactic shortnames of this technique in the rule, comma-separated, in attack_version's vocabulary (18.1: defense-evasion; 19: stealth, defense-impairment)"},
	{Name: "severity", Type: tables.Text, Description: "informational, low, medium, high or critical"},
	{Name: "confidence", Type: tables.Text, Description: "low, medium or high"},
	{Name: "description", Type: tables.Text, Description: "What the rule detects"},
	{Name: "recommendations", Type: tables.Text, Description: "What to do about it"},
	{Name: "eid", Type: tables.BigInt, Description: "The event's eid in process_events (0 when the event is not stored)"},
	{Name: "pid", Type: tables.BigInt, Description: "Process id of the event"},
	{Name: "path", Type: tables.Text, Description: "Executable of the process"},
	{Name: "cmdline", Type: tables.Text, Description: "Command line of the process"},
	{Name: "parent_path", Type: tables.Text, Description: "Parent's executable"},
	{Name: "username", Type: tables.Text, Description: "User of the process"},
	{Name: "source", Type: tables.Text, Description: "Telemetry source of the event (ebpf, sysmon, security4688, auditd…)"},
	{Name: "detected_at", Type: tables.BigInt, Description: "When Quarry found the hit (stored it), UNIX seconds: later than time for an imported recording or scan --store", Additional: true},
	{Name: "kind", Type: tables.Text, Description: "ioa for a rule's hit; ioc for a threat intelligence indicator found in the event (rule_source intel, rule_title 'IOC <indicator>', rule_author the feed; its details in ioc_hits by hit_id)"},
	{Name: "attack_version", Type: tables.Text, Description: "ATT&CK version of technique_name and tactic: 18.1 (default) or 19 (WHERE attack_version = '19')", Hidden: true},
}

// Hits returns the ioa_hits table over the hits in st, with technique
// names and tactics resolved in kb to the attack_version asked for.
func Hits(st *eventstore.Store, kb *attack.KB) tables.Table {
	return tables.Table{
		Name: "ioa_hits",
		Description: "Indicator-of-Attack detections: every hit of a builtin, custom or SigmaHQ rule on live or " +
			"imported telemetry, one row per hit and ATT&CK technique, with tactic, severity, confidence, " +
			"description, recommendations and the rule's author. Join eid to process_events, technique_id to " +
			"attack_techniques. A technique_id constraint on a parent (T1003) does not match sub-techniques: use " +
			"technique_id LIKE 'T1003%'. Tactics and technique names are of one ATT&CK version: 18.1, or 19 with " +
			"WHERE attack_version = '19'. detected_at is when Quarry found the hit, time when its event happened. " +
			"IoC hits (threat intelligence indicators found in events) are rows of kind 'ioc' beside the rules' " +
			"('ioa'): WHERE kind = 'ioa' for rule detections only.",
		Columns: hitColumns,
		Generate: func(ctx context.Context, q tables.QueryContext, emit tables.EmitFunc) error {
			f, none := hitFilter(q)
			if none {
				return nil
			}
			version, v19, ok := tables.AskedAttackVersion(q)
			if !ok {
				return nil
			}
			names := newResolver(kb, v19)
			row := make(tables.Row, len(hitColumns))
			return st.ScanHits(ctx, f, func(h *telemetry.Hit) bool {
				row[0] = h.HitID
				row[1] = h.Time.Unix()
				row[2] = h.Host
				row[3] = h.RuleID
				row[4] = h.RuleTitle
				row[5] = h.RuleAuthor
				row[6] = h.RuleSource
				row[7], row[8], row[9] = names.resolve(h.TechniqueID, h.TechniqueName, h.Tactic)
				row[10] = h.Severity
				row[11] = h.Confidence
				row[12] = h.Description
				row[13] = h.Recommendations
				row[14] = h.EID
				row[15] = h.PID
				row[16] = h.Path
				row[17] = h.Cmdline
				row[18] = h.ParentPath
				row[19] = h.Username
				row[20] = h.Source
				row[21] = unixOrZero(h.DetectedAt)
				row[22] = h.Kind()
				row[23] = version
				return emit(row)
			})
		},
	}
}

// hitFilter pushes time, technique, host, rule and hit-id constraints down
// to the store; none reports a constraint nothing can satisfy.
func hitFilter(q tables.QueryContext) (f eventstore.HitFilter, none bool) {
	if f.Since, f.Until, none = q.TimeRange("time"); none {
		return f, true
	}
	eq := func(col string) ([]string, bool) {
		vals, ok := q.EqualStrings(col)
		if ok && len(vals) == 0 {
			return nil, true
		}
		return vals, false
	}
	if f.DetectedSince, f.DetectedUntil, none = q.TimeRange("detected_at"); none {
		return f, true
	}
	var n bool
	if f.TechniqueIDs, n = eq("technique_id"); n {
		return f, true
	}
	for i, id := range f.TechniqueIDs {
		if strings.EqualFold(id, telemetry.Untagged) {
			f.TechniqueIDs[i] = "" // stored as ''
		}
	}
	if f.Hosts, n = eq("host_identifier"); n {
		return f, true
	}
	if f.RuleIDs, n = eq("rule_id"); n {
		return f, true
	}
	if f.HitIDs, n = eq("hit_id"); n {
		return f, true
	}
	if kinds, n := eq("kind"); n {
		return f, true
	} else if len(kinds) == 1 {
		if kinds[0] != telemetry.KindIOA && kinds[0] != telemetry.KindIOC {
			return f, true
		}
		f.Kind = kinds[0]
	}
	// technique_id LIKE 'T1003%': the store applies the same LIKE.
	for _, c := range q.Constraints {
		if c.Column == "technique_id" && c.Op == tables.OpLIKE {
			// Only a pattern that cannot match 'untagged' (stored as '').
			if s, ok := c.Value.(string); ok && s != "" && strings.ContainsRune("tT", rune(s[0])) {
				f.TechniqueLike = append(f.TechniqueLike, s)
			}
		}
	}
	return f, false
}

// resolver gives stored hits' techniques and tactics in one ATT&CK
// version, remembering each (technique, tactics) it resolved.
type resolver struct {
	kb   *attack.KB
	v19  bool
	seen map[[3]string][3]any
}

func newResolver(kb *attack.KB, v19 bool) *resolver {
	return &resolver{kb: kb, v19: v19, seen: map[[3]string][3]any{}}
}

// resolve returns technique_id ('untagged' for none), technique_name and
// tactic of a stored hit row in the resolver's version.
func (r *resolver) resolve(id, name, tactic string) (any, any, any) {
	k := [3]string{id, name, tactic}
	if v, ok := r.seen[k]; ok {
		return v[0], v[1], v[2]
	}
	out := [3]any{id, name, tactic}
	if id == "" {
		out[0] = telemetry.Untagged
	}
	if r.kb != nil {
		var ts []string
		if tactic != "" {
			ts = strings.Split(tactic, ",")
		}
		p := r.kb.Place(id, ts, r.v19)
		if p.Name != "" {
			out[1] = p.Name
		}
		out[2] = strings.Join(p.Tactics, ",")
	}
	r.seen[k] = out
	return out[0], out[1], out[2]
}

// unixOrZero is t in UNIX seconds, 0 for the zero time.
func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}
