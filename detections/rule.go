package detections

import (
	"math/bits"
	"slices"
	"strings"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/detections/sigma"
)

// Source says where a rule came from.
type Source string

// Rule sources.
const (
	SourceBuiltin Source = "builtin" // Quarry's own IoA pack
	SourceCustom  Source = "custom"  // the user's rules
	SourceSigma   Source = "sigma"   // SigmaHQ rules
	// SourceCorrelation marks correlation rules, whatever file they came
	// from: their hits are built from other rules' hits.
	SourceCorrelation Source = "correlation"
)

// Severity is a rule's level as an ordered value.
type Severity uint8

// Severities, from the Sigma levels.
const (
	SeverityUnknown Severity = iota
	SeverityInformational
	SeverityLow
	SeverityMedium
	SeverityHigh
	SeverityCritical
)

// String returns the Sigma level name.
func (s Severity) String() string {
	switch s {
	case SeverityInformational:
		return "informational"
	case SeverityLow:
		return "low"
	case SeverityMedium:
		return "medium"
	case SeverityHigh:
		return "high"
	case SeverityCritical:
		return "critical"
	}
	return "unknown"
}

// ParseSeverity maps a Sigma level to a Severity.
func ParseSeverity(level string) Severity {
	for s := SeverityInformational; s <= SeverityCritical; s++ {
		if s.String() == level {
			return s
		}
	}
	return SeverityUnknown
}

// Technique is an ATT&CK technique a rule is tagged with.
type Technique struct {
	ID string // as tagged, upper case: T1059.001
	// ResolvedID is the technique the ID stands for in the loaded ATT&CK
	// (after redirects); equal to ID when the ID is current, empty when the
	// ID is unknown to the loaded ATT&CK version.
	ResolvedID string
	Name       string // from ATT&CK; empty when unknown
}

// CurrentID is the ID to report: the resolved one, or the tagged one when
// the loaded ATT&CK does not know it.
func (t Technique) CurrentID() string {
	if t.ResolvedID != "" {
		return t.ResolvedID
	}
	return t.ID
}

// Tactic is an ATT&CK tactic a rule is tagged with (or its techniques
// belong to).
type Tactic struct {
	ID        string // TA0002; empty when unknown to the loaded ATT&CK
	ShortName string // execution, stealth, defense-impairment…
	Name      string
}

// Rule is a loaded, compiled detection rule and everything a hit reports
// about it. Rules are immutable once loaded and may be shared.
type Rule struct {
	ID          string
	Name        string // the name correlation rules may refer to it by
	Title       string
	Author      string
	Source      Source
	Path        string // the file it was loaded from
	Line        int
	Status      string
	Level       string
	Severity    Severity
	Description string
	// Confidence is low, medium or high: the rule's own, or derived (see
	// DeriveConfidence) when ConfidenceDerived.
	Confidence        string
	ConfidenceDerived bool
	// Recommendations say what to do on a hit: the rule's own, or built
	// from the ATT&CK mitigations of its techniques when
	// RecommendationsDerived.
	Recommendations        string
	RecommendationsDerived bool
	FalsePositives         []string
	References             []string
	Tags                   []string
	Logsource              sigma.Logsource
	Techniques             []Technique
	Tactics                []Tactic
	// Warnings are non-fatal problems: unknown techniques or tactics,
	// unresolved placeholders.
	Warnings []string
	// warningLines holds the file line of each warning found at one (a
	// tag's), 0 or absent for the others.
	warningLines []int
	// Sigma is the parsed rule.
	Sigma *sigma.Rule
	// Correlation is set for a correlation rule (Source
	// SourceCorrelation), which the Engine does not evaluate: a Correlator
	// does, over the hits of the rules it names.
	Correlation *sigma.Correlation

	// narrow is set for a rule with search_tags: which techniques and
	// tactics a hit reports depends on the searches that matched.
	narrow *narrowing

	prog *program
	// lazy compiles prog on first use for a rule loaded from the cache.
	lazy *lazyProgram
	// placeholders are the expand values the rule was compiled with (the
	// reference evaluator compiles its values again with them).
	placeholders map[string][]string
}

// narrowing holds, as bit sets over a rule's Techniques, what each of its
// search_tags searches evidences.
type narrowing struct {
	searches []uint64 // by search_tags entry: the techniques it evidences
	always   uint64   // techniques no search lists: reported on every hit
	tactics  []uint64 // by Tactics entry: the techniques of that tactic (0: keep always)
}

// newNarrowing builds the bit sets of a rule with search_tags; nil when the
// rule has none, or more techniques than a bit set holds.
func newNarrowing(r *Rule, kb *attack.KB) *narrowing {
	if r.Sigma == nil || len(r.Sigma.SearchTags) == 0 || len(r.Techniques) > 64 {
		return nil
	}
	bit := map[string]uint64{}
	for i, t := range r.Techniques {
		bit[t.ID] = 1 << i
	}
	n := &narrowing{}
	var listed uint64
	for _, st := range r.Sigma.SearchTags {
		var m uint64
		for _, tag := range st.Tags {
			m |= bit[strings.ToUpper(strings.TrimPrefix(tag, "attack."))]
		}
		n.searches = append(n.searches, m)
		listed |= m
	}
	n.always = (uint64(1)<<len(r.Techniques) - 1) &^ listed
	tacticsOf := make([][]string, len(r.Techniques))
	for i, t := range r.Techniques {
		tacticsOf[i] = techniqueTacticIDs(kb, t)
	}
	for _, tac := range r.Tactics {
		var m uint64
		for i := range r.Techniques {
			if tac.ID != "" && slices.Contains(tacticsOf[i], tac.ID) {
				m |= 1 << i
			}
		}
		n.tactics = append(n.tactics, m)
	}
	return n
}

// hitAttack returns the techniques and tactics a hit of the rule on the
// event vs gives reports: all of the rule's, unless search_tags narrow
// them to those of the searches that matched.
func (r *Rule) hitAttack(vs valueSource) ([]Technique, []Tactic) {
	n := r.narrow
	p := r.program()
	if n == nil || p == nil {
		return r.Techniques, r.Tactics
	}
	got := n.always
	for i, node := range p.tagged {
		if got&n.searches[i] != n.searches[i] && node.eval(vs) {
			got |= n.searches[i]
		}
	}
	if got == 0 {
		// No search that matched lists a technique and every technique
		// is listed: report them all rather than none.
		return r.Techniques, r.Tactics
	}
	techs := make([]Technique, 0, bits.OnesCount64(got))
	for i, t := range r.Techniques {
		if got&(1<<i) != 0 {
			techs = append(techs, t)
		}
	}
	tacs := make([]Tactic, 0, len(r.Tactics))
	for i, t := range r.Tactics {
		if n.tactics[i] == 0 || n.tactics[i]&got != 0 {
			tacs = append(tacs, t)
		}
	}
	return techs, tacs
}
