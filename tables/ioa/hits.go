package ioa

import (
	"context"
	"time"

	"github.com/quarry-sec/quarry/tables"
	"github.com/quarry-sec/quarry/telemetry/store"
)

var hitColumns = []tables.Column{
	{Name: "hit_id", Type: tables.Text, Description: "Hit id (UUID); the same for every technique row of one hit", Index: true},
	{Name: "time", Type: tables.BigInt, Description: "When the detected event happened, UNIX seconds", Additional: true},
	{Name: "host_identifier", Type: tables.Text, Description: "Host of the event", Additional: true},
	{Name: "rule_id", Type: tables.Text, Description: "The rule's id", Additional: true},
	{Name: "rule_title", Type: tables.Text, Description: "The rule's title"},
	{Name: "rule_author", Type: tables.Text, Description: "The rule's author (SigmaHQ's DRL requires showing it)"},
	{Name: "rule_source", Type: tables.Text, Description: "builtin (Quarry's IoA pack), custom, sigma or correlation"},
	{Name: "technique_id", Type: tables.Text, Description: "ATT&CK technique (one row per technique of the rule)", Index: true},
	{Name: "technique_name", Type: tables.Text, Description: "ATT&CK technique name"},
	{Name: "tactic", Type: tables.Text, Description: "ATT&CK tactic shortnames of this technique in the rule, comma-separated"},
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
}

// Hits returns the ioa_hits table over the hits in st.
func Hits(st *store.Store) tables.Table {
	return tables.Table{
		Name: "ioa_hits",
		Description: "Indicator-of-Attack detections: every hit of a builtin, custom or SigmaHQ rule on live or " +
			"imported telemetry, one row per hit and ATT&CK technique, with tactic, severity, confidence, " +
			"description, recommendations and the rule's author. Join eid to process_events, technique_id to " +
			"attack_techniques. A technique_id constraint on a parent (T1003) does not match sub-techniques: use " +
			"technique_id LIKE 'T1003%'.",
		Columns: hitColumns,
		Generate: func(ctx context.Context, q tables.QueryContext, emit tables.EmitFunc) error {
			f, none := hitFilter(q)
			if none {
				return nil
			}
			row := make(tables.Row, len(hitColumns))
			return st.ScanHits(ctx, f, func(h *store.HitRecord) bool {
				row[0] = h.HitID
				row[1] = h.Time.Unix()
				row[2] = h.Host
				row[3] = h.RuleID
				row[4] = h.RuleTitle
				row[5] = h.RuleAuthor
				row[6] = h.RuleSource
				row[7] = h.TechniqueID
				row[8] = h.TechniqueName
				row[9] = h.Tactic
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
				return emit(row)
			})
		},
	}
}

// hitFilter pushes time, technique, host, rule and hit-id constraints down
// to the store; none reports a constraint nothing can satisfy.
func hitFilter(q tables.QueryContext) (f store.HitFilter, none bool) {
	if lo, hi, ok := q.IntRange("time"); ok {
		if lo > hi {
			return f, true
		}
		if lo > -1<<40 {
			f.Since = time.Unix(lo, 0)
		}
		if hi < 1<<40 {
			f.Until = time.Unix(hi+1, 0)
		}
	}
	eq := func(col string) ([]string, bool) {
		vals, ok := q.EqualStrings(col)
		if ok && len(vals) == 0 {
			return nil, true
		}
		return vals, false
	}
	var n bool
	if f.TechniqueIDs, n = eq("technique_id"); n {
		return f, true
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
	// technique_id LIKE 'T1003%': the store applies the same LIKE.
	for _, c := range q.Constraints {
		if c.Column == "technique_id" && c.Op == tables.OpLIKE {
			if s, ok := c.Value.(string); ok {
				f.TechniqueLike = append(f.TechniqueLike, s)
			}
		}
	}
	return f, false
}
