package tables

import "github.com/quarry-sec/quarry/attack"

// AskedAttackVersion reads a table's attack_version constraint: the ATT&CK
// version to show (as asked; 18.1 without a constraint) and whether it is
// v19. ok is false when the constraint names no version (no row can have
// it).
func AskedAttackVersion(q QueryContext) (version string, v19, ok bool) {
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
