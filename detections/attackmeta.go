package detections

import (
	"fmt"
	"strings"
	"sync"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/detections/sigma"
)

// resolveAttack fills the rule's techniques and tactics from its attack.*
// tags. Unknown IDs and shortnames are kept and reported as warnings.
func resolveAttack(r *Rule, kb *attack.KB) {
	seenTech := map[string]bool{}
	seenTac := map[string]bool{}
	addTactic := func(short string, warn bool, line int) {
		short = strings.ReplaceAll(strings.ToLower(short), "_", "-")
		if seenTac[short] {
			return
		}
		t := Tactic{ShortName: short}
		if kb != nil {
			if kt, ok := kb.Tactic(short); ok {
				t.ID, t.Name = kt.ID, kt.Name
			} else if warn {
				r.warnAt(line, fmt.Sprintf("tags: tactic %q unknown to ATT&CK %s", short, kb.Version()))
			}
		}
		seenTac[short] = true
		r.Tactics = append(r.Tactics, t)
	}
	for i, tag := range r.Tags {
		line := 0
		if r.Sigma != nil && i < len(r.Sigma.TagLines) && len(r.Sigma.TagLines) == len(r.Tags) {
			line = r.Sigma.TagLines[i]
		}
		tag = strings.ToLower(strings.TrimSpace(tag))
		rest, ok := strings.CutPrefix(tag, "attack.")
		if !ok {
			continue
		}
		switch {
		case sigma.IsTechniqueID(rest):
			id := strings.ToUpper(rest)
			if seenTech[id] {
				continue
			}
			seenTech[id] = true
			t := Technique{ID: id}
			if kb != nil {
				if kt, _, found := kb.Resolve(id); found {
					t.ResolvedID, t.Name = kt.ID, kt.Name
					if kt.NameV19 != "" && kt.AttackVersion == attack.VersionV19 {
						t.Name = kt.NameV19
					}
				} else {
					r.warnAt(line, fmt.Sprintf("tags: technique %s unknown to ATT&CK %s", id, kb.Version()))
				}
			}
			r.Techniques = append(r.Techniques, t)
		case len(rest) > 1 && (rest[0] == 'g' || rest[0] == 's') && isDigits(rest[1:]),
			len(rest) > 2 && (strings.HasPrefix(rest, "ds") || strings.HasPrefix(rest, "dc")) && isDigits(rest[2:]):
			// groups and software, data sources and data components
			// (attack.ds0005): kept in Tags only, not tactics
		case strings.HasPrefix(rest, "car.") || strings.HasPrefix(rest, "d3fend"):
		default:
			addTactic(rest, true, line)
		}
	}
	if len(r.Tactics) == 0 && kb != nil {
		for _, t := range r.Techniques {
			if t.ResolvedID == "" {
				continue
			}
			if kt, ok := kb.Technique(t.ResolvedID); ok {
				for _, s := range kt.Tactics {
					addTactic(s, false, 0)
				}
			}
		}
	}
}

// techniqueTacticIDs returns the IDs of the tactics a technique belongs to
// in kb (none when kb or the technique is unknown).
func techniqueTacticIDs(kb *attack.KB, t Technique) []string {
	if kb == nil || t.ResolvedID == "" {
		return nil
	}
	kt, ok := kb.Technique(t.ResolvedID)
	if !ok {
		return nil
	}
	var ids []string
	for _, s := range kt.Tactics {
		if tac, ok := kb.Tactic(s); ok {
			ids = append(ids, tac.ID)
		}
	}
	return ids
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// DeriveConfidence gives a rule without its own confidence one, from its
// status, level and false-positive notes:
//
//   - low: status deprecated or unsupported, or level informational or low;
//   - high: status stable or test, and no false positives noted, or only
//     "unknown", "unlikely", "none" or "rare" ones;
//   - medium: everything else (experimental rules, rules with real
//     false-positive notes, rules without a status).
func DeriveConfidence(status, level string, falsePositives []string) string {
	switch status {
	case "deprecated", "unsupported":
		return "low"
	}
	switch level {
	case "informational", "low":
		return "low"
	}
	if status != "stable" && status != "test" {
		return "medium"
	}
	for _, fp := range falsePositives {
		f := strings.ToLower(strings.TrimSpace(fp))
		if f == "" {
			continue
		}
		benign := false
		for _, w := range []string{"unknown", "unlikely", "none", "rare", "n/a"} {
			if strings.HasPrefix(f, w) {
				benign = true
				break
			}
		}
		if !benign {
			return "medium"
		}
	}
	return "high"
}

// DeriveRecommendations builds recommendations for a rule without its own
// from the ATT&CK mitigations of its techniques: one line per mitigation,
// "M1038 Execution Prevention (T1059.001): how it applies". Empty when the
// techniques have no mitigations.
func DeriveRecommendations(kb *attack.KB, techniques []Technique) string {
	if kb == nil {
		return ""
	}
	var key strings.Builder
	for _, t := range techniques {
		key.WriteString(t.ResolvedID)
		key.WriteByte(',')
	}
	recoMemo.Lock()
	defer recoMemo.Unlock()
	if recoMemo.kb != kb {
		recoMemo.kb, recoMemo.m, recoMemo.lines = kb, map[string]string{}, map[string]string{}
	}
	s, ok := recoMemo.m[key.String()]
	if !ok {
		s = deriveRecommendations(kb, techniques, recoMemo.lines)
		recoMemo.m[key.String()] = s
	}
	return s
}

// recoMemo remembers the recommendations of the technique lists seen with
// the last knowledge base (rules share technique lists; building the text
// is a good part of loading a rule), and the one-line form of each
// mitigation's description (lists share techniques).
var recoMemo struct {
	sync.Mutex
	kb    *attack.KB
	m     map[string]string
	lines map[string]string
}

func deriveRecommendations(kb *attack.KB, techniques []Technique, lines map[string]string) string {
	var entries []string
	total := 0
	seen := map[string]bool{}
	for _, t := range techniques {
		if t.ResolvedID == "" {
			continue
		}
		for _, rel := range kb.MitigationsOf(t.ResolvedID) {
			key := rel.SourceID + "/" + t.ResolvedID
			if seen[key] {
				continue
			}
			seen[key] = true
			name := rel.SourceID
			if m, ok := kb.Mitigation(rel.SourceID); ok {
				if !m.Live() {
					continue
				}
				name = m.ID + " " + m.Name
			}
			line, ok := lines[rel.Description]
			if !ok {
				line = oneLine(rel.Description)
				lines[rel.Description] = line
			}
			entries = append(entries, name, " (", t.ResolvedID, "): ", line)
			total += len(name) + len(t.ResolvedID) + len(line) + 5
		}
	}
	var b strings.Builder
	b.Grow(total)
	for i, e := range entries {
		if i > 0 && i%5 == 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e)
	}
	return b.String()
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	// ATT&CK descriptions cite sources as "(Citation: …)": drop them.
	for {
		i := strings.Index(s, "(Citation:")
		if i < 0 {
			break
		}
		j := strings.Index(s[i:], ")")
		if j < 0 {
			break
		}
		s = strings.TrimSpace(s[:i]) + s[i+j+1:]
	}
	return strings.TrimSpace(s)
}

// warnAt adds a warning found at a line of the rule's file (0: the rule's).
func (r *Rule) warnAt(line int, msg string) {
	for len(r.warningLines) < len(r.Warnings) {
		r.warningLines = append(r.warningLines, 0)
	}
	r.Warnings = append(r.Warnings, msg)
	r.warningLines = append(r.warningLines, line)
}

// warningLine is the line of Warnings[i], or 0 when it is the rule's.
func (r *Rule) warningLine(i int) int {
	if i < len(r.warningLines) {
		return r.warningLines[i]
	}
	return 0
}
