package incidents

import (
	"strings"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/tables"
)

// askedVersion reads the attack_version constraint: the version to show
// (as asked, 18.1 without one) and whether it is v19; ok is false when the
// constraint names no version.
func askedVersion(q tables.QueryContext) (version string, v19, ok bool) {
	vals, constrained := q.EqualStrings("attack_version")
	if !constrained {
		return attack.ViewV18, false, true
	}
	for _, v := range vals {
		if is19, err := attack.ParseVersion(v); err == nil {
			return v, is19, true
		}
	}
	return "", false, false
}

// TacticsIn gives an incident's tactics (stored in v18.1, see
// detections/incidents.V18Tactic) in one ATT&CK version: in v18.1 as they
// are; in v19 the v19 tactics of its techniques, placed with the stored
// tactics (attack.KB.Place), or the stored tactics mapped when it has no
// technique. Comma-separated, in the version's matrix order.
func TacticsIn(kb *attack.KB, techniques, tactics string, v19 bool) string {
	if kb == nil || tactics == "" {
		return tactics
	}
	stored := strings.Split(tactics, ",")
	var out []string
	seen := map[string]bool{}
	add := func(ts []string) {
		for _, t := range ts {
			if !seen[t] {
				seen[t] = true
				out = append(out, t)
			}
		}
	}
	if v19 && techniques != "" {
		for _, id := range strings.Split(techniques, ",") {
			add(kb.Place(id, stored, v19).Tactics)
		}
	}
	// Tactics no technique gave (rules tagged with a tactic only).
	for _, s := range stored {
		m := kb.TacticIn(s, v19)
		if m == "" {
			continue
		}
		if !v19 || s != "defense-evasion" || !seenAny(seen, "stealth", "defense-impairment") {
			add([]string{m})
		}
	}
	return strings.Join(kb.Place("", out, v19).Tactics, ",")
}

func seenAny(seen map[string]bool, names ...string) bool {
	for _, n := range names {
		if seen[n] {
			return true
		}
	}
	return false
}
