package server

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/quarry-sec/quarry/detections/packs"
	"github.com/quarry-sec/quarry/fleet/osqwire"
	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/telemetry"
)

// isHitsQuery reports whether a result log's rows are IoA hits: the
// detection pack's hit queries, or any query whose name holds "ioa_hits".
func isHitsQuery(name, query string) bool {
	return query == packs.QueryHits || query == packs.QueryHighSeverity ||
		strings.Contains(strings.ToLower(name), "ioa_hits")
}

// detection reads a row with ioa_hits columns (hit_id and technique_id at
// least); what the row lacks of the technique's name and tactics comes
// from ATT&CK. Old technique IDs are stored as their successor.
func (s *Server) detection(h *store.Host, query string, raw json.RawMessage, at time.Time) (store.Detection, bool) {
	var cols map[string]any
	if err := json.Unmarshal(raw, &cols); err != nil {
		return store.Detection{}, false
	}
	get := func(k string) string { return limitString(strings.TrimSpace(osqwire.Text(cols[k])), 8192) }
	d := store.Detection{
		Query: query,
		Hit: telemetry.Hit{
			HitID:           limitString(get("hit_id"), 128),
			TechniqueID:     strings.ToUpper(limitString(get("technique_id"), 32)),
			RuleID:          get("rule_id"),
			RuleTitle:       get("rule_title"),
			RuleAuthor:      get("rule_author"),
			RuleSource:      get("rule_source"),
			TechniqueName:   get("technique_name"),
			Tactic:          firstNonEmpty(get("tactic"), get("tactics")),
			Severity:        strings.ToLower(get("severity")),
			Confidence:      strings.ToLower(get("confidence")),
			Description:     get("description"),
			Recommendations: get("recommendations"),
			Path:            get("path"),
			Cmdline:         get("cmdline"),
			ParentPath:      get("parent_path"),
			Username:        get("username"),
			Source:          get("source"),
		},
	}
	if d.HitID == "" {
		return store.Detection{}, false
	}
	// An IoC hit (a host's ioa_hits row of kind ioc) is stored by its
	// rule_source, whatever the host called the rule's source.
	if strings.EqualFold(get("kind"), telemetry.KindIOC) {
		d.RuleSource = telemetry.RuleSourceIntel
	}
	d.Kind = telemetry.KindOf(d.RuleSource)
	if d.TechniqueID == "" || strings.EqualFold(d.TechniqueID, telemetry.Untagged) {
		// A rule naming no technique (older hosts sent ''): one label.
		d.TechniqueID = telemetry.Untagged
	}
	d.EID, _ = strconv.ParseInt(get("eid"), 10, 64)
	d.PID, _ = strconv.ParseInt(get("pid"), 10, 64)
	d.Time = at
	if sec, err := strconv.ParseInt(get("time"), 10, 64); err == nil && sec > 0 {
		d.Time = time.Unix(sec, 0)
	}
	// When the host found it; a host that does not say: the log's time.
	d.DetectedAt = at
	if sec, err := strconv.ParseInt(get("detected_at"), 10, 64); err == nil && sec > 0 {
		d.DetectedAt = time.Unix(sec, 0)
	}
	// Tactics in one vocabulary, ATT&CK v18.1 (what the pack's queries
	// send; an older host may send v19's stealth beside defense-evasion):
	// the UI shows them in the version it is asked for.
	if s.cfg.KB != nil && d.Tactic != "" {
		if p := s.cfg.KB.Place(d.TechniqueID, strings.Split(d.Tactic, ","), false); len(p.Tactics) > 0 {
			d.Tactic = strings.Join(p.Tactics, ",")
		}
	}
	if t, _, ok := s.cfg.KB.Resolve(d.TechniqueID); ok {
		d.TechniqueID = t.ID
		if d.TechniqueName == "" {
			d.TechniqueName = t.Name
		}
		if d.Tactic == "" {
			d.Tactic = strings.Join(t.Tactics, ",")
		}
	}
	return d, true
}
