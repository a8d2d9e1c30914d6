package detections

import (
	"strings"

	"github.com/quarry-sec/quarry/attack"
)

// ReportedRule returns the rule of a detection another tool made and
// reported, such as a signature of a sandbox report: it has no detection
// of its own (the Engine never evaluates it); its hits are made by whoever
// read the report. Its techniques and tactics come from techniques (ATT&CK
// IDs) as a Sigma rule's from its attack.* tags, resolved in kb (nil: kept
// as given); its confidence is derived from its severity, its
// recommendations from the techniques' mitigations.
func ReportedRule(id, title, author string, source Source, severity Severity, description string, techniques []string, kb *attack.KB) *Rule {
	r := &Rule{ID: id, Name: id, Title: title, Author: author, Source: source, Status: "stable",
		Level: severity.String(), Severity: severity, Description: description}
	for _, t := range techniques {
		r.Tags = append(r.Tags, "attack."+strings.ToLower(t))
	}
	resolveAttack(r, kb)
	r.Confidence, r.ConfidenceDerived = DeriveConfidence(r.Status, r.Level, nil), true
	r.Recommendations, r.RecommendationsDerived = DeriveRecommendations(kb, r.Techniques), true
	return r
}
