package telemetry

import "time"

// Hit is one detection: a rule matching one event, for one of the rule's
// ATT&CK techniques (a hit of a rule naming two techniques is two Hits
// sharing HitID). It is the one hit type of every layer: the event store's
// hits rows, the ioa_hits table, scan's JSON lines, what the fleet stores
// and serves (fleet/store.Detection embeds it) and incidents' hits.
//
// The fields and their JSON names are the ioa_hits columns, in order, which are also what hosts send
// the fleet; times encode as RFC 3339 (scan's JSON lines and ioa_hits give
// them in UNIX seconds).
type Hit struct {
	HitID string    `json:"hit_id"`
	Time  time.Time `json:"time"` // when the event happened
	// Host is the event's host (its host identifier).
	Host        string `json:"host_identifier"`
	RuleID      string `json:"rule_id"`
	RuleTitle   string `json:"rule_title"`
	RuleAuthor  string `json:"rule_author"`
	RuleSource  string `json:"rule_source"`  // builtin, custom, sigma, correlation
	TechniqueID string `json:"technique_id"` // "" when the rule names none (shown as Untagged)
	// TechniqueName is the technique's ATT&CK name; Tactic the tactic
	// shortnames of this technique in the rule, comma-separated.
	TechniqueName   string `json:"technique_name"`
	Tactic          string `json:"tactic"`
	Severity        string `json:"severity"`
	Confidence      string `json:"confidence"`
	Description     string `json:"description"`
	Recommendations string `json:"recommendations"`
	EID             int64  `json:"eid"` // the event's eid in the event store; 0 when not stored
	PID             int64  `json:"pid"`
	Path            string `json:"path"`
	Cmdline         string `json:"cmdline"`
	ParentPath      string `json:"parent_path"`
	Username        string `json:"username"`
	Source          string `json:"source"` // the event's Source
	// DetectedAt is when Quarry found the hit: when it was stored, whatever
	// the event's Time (later for an imported recording or a scan of stored
	// history).
	DetectedAt time.Time `json:"detected_at"`
}

// Untagged is how a hit whose rule names no ATT&CK technique shows its
// technique (ioa_hits.technique_id, the fleet's detections); the event
// store keeps it as "".
const Untagged = "untagged"

// Hit kinds: an IoA hit is a detection rule's; an IoC hit is a threat
// intelligence indicator found in an event (detections/intel), stored with
// rule_source RuleSourceIntel and rule_title "IOC <indicator>".
const (
	KindIOA = "ioa"
	KindIOC = "ioc"
	// RuleSourceIntel is the rule_source of IoC hits.
	RuleSourceIntel = "intel"
)

// Kind says whether the hit is an IoA (a rule's) or an IoC (an intel
// indicator's) hit: KindIOA or KindIOC.
func (h *Hit) Kind() string { return KindOf(h.RuleSource) }

// KindOf returns the kind of a hit of the given rule_source.
func KindOf(ruleSource string) string {
	if ruleSource == RuleSourceIntel {
		return KindIOC
	}
	return KindIOA
}
