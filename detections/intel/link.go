package intel

import (
	"fmt"
	"strings"
	"sync"

	"github.com/quarry-sec/quarry/attack"
)

// Linker resolves the groups and software an intel feed names (ATT&CK IDs,
// names or aliases) to the ATT&CK knowledge base, and describes them with
// the techniques they use. Its index is built on first use: every query
// command's table catalog makes one, most never look a name up.
type Linker struct {
	kb       *attack.KB
	once     sync.Once
	groups   map[string]*attack.Group
	software map[string]*attack.Software
}

// NewLinker returns a Linker over kb's groups and software, by ID, name
// and alias (case-insensitive). A nil kb gives a Linker that resolves
// nothing.
func NewLinker(kb *attack.KB) *Linker { return &Linker{kb: kb} }

// index builds the name index (once).
func (l *Linker) index() {
	l.once.Do(func() {
		l.groups, l.software = map[string]*attack.Group{}, map[string]*attack.Software{}
		if l.kb == nil {
			return
		}
		gs := l.kb.Groups()
		for i := range gs {
			g := &gs[i]
			for _, n := range append([]string{g.ID, g.Name}, g.Aliases...) {
				k := strings.ToLower(n)
				if cur, ok := l.groups[k]; !ok || !cur.Live() && g.Live() {
					l.groups[k] = g
				}
			}
		}
		ss := l.kb.Software()
		for i := range ss {
			s := &ss[i]
			for _, n := range append([]string{s.ID, s.Name}, s.Aliases...) {
				k := strings.ToLower(n)
				if cur, ok := l.software[k]; !ok || !cur.Live() && s.Live() {
					l.software[k] = s
				}
			}
		}
	})
}

// Resolve replaces the group and software names of in that the knowledge
// base knows by their ATT&CK IDs (APT29 → G0016, Cobalt Strike → S0154);
// a group name that is software (or the reverse) moves to its list. Names it
// does not know stay as they are.
func (l *Linker) Resolve(in *Indicator) {
	l.index()
	var groups, malware []string
	for _, g := range in.Groups {
		if x, ok := l.groups[strings.ToLower(g)]; ok {
			groups = append(groups, x.ID)
		} else if x, ok := l.software[strings.ToLower(g)]; ok {
			malware = append(malware, x.ID)
		} else {
			groups = append(groups, g)
		}
	}
	for _, s := range in.Malware {
		if x, ok := l.software[strings.ToLower(s)]; ok {
			malware = append(malware, x.ID)
		} else if x, ok := l.groups[strings.ToLower(s)]; ok {
			groups = append(groups, x.ID)
		} else {
			malware = append(malware, s)
		}
	}
	var techs []string
	for _, t := range in.Techniques {
		if l.kb != nil {
			if tech, _, ok := l.kb.Resolve(t); ok {
				t = tech.ID
			}
		}
		techs = append(techs, t)
	}
	in.Groups, in.Malware, in.Techniques = uniq(groups), uniq(malware), uniq(techs)
}

// maxListed bounds the techniques Context lists for one group or software.
const maxListed = 6

// Context describes the groups and software linked to an indicator: "linked
// to G0016 APT29 (uses T1059.001, T1566.002, … 61 techniques); S0154 Cobalt
// Strike (uses …)". Unknown names are listed as given.
func (l *Linker) Context(groups, malware []string) string {
	l.index()
	var parts []string
	for _, g := range groups {
		x, ok := l.groups[strings.ToLower(g)]
		if !ok {
			parts = append(parts, g)
			continue
		}
		parts = append(parts, l.describe(x.ID, x.Name, attack.GroupUses))
	}
	for _, s := range malware {
		x, ok := l.software[strings.ToLower(s)]
		if !ok {
			parts = append(parts, s)
			continue
		}
		parts = append(parts, l.describe(x.ID, x.Name, attack.SoftwareUses))
	}
	if len(parts) == 0 {
		return ""
	}
	return "linked to " + strings.Join(parts, "; ")
}

func (l *Linker) describe(id, name string, kind attack.RelationKind) string {
	rels := l.kb.RelationsOfSource(kind, id)
	if len(rels) == 0 {
		return id + " " + name
	}
	var ids []string
	for _, r := range rels {
		ids = append(ids, r.TechniqueID)
	}
	ids = uniq(ids)
	s := id + " " + name + " (uses " + strings.Join(ids[:min(len(ids), maxListed)], ", ")
	if len(ids) > maxListed {
		s += fmt.Sprintf(", … %d techniques", len(ids))
	}
	return s + ")"
}

// Techniques returns the techniques the groups and software use, by ID.
func (l *Linker) Techniques(groups, malware []string) []string {
	l.index()
	if l.kb == nil {
		return nil
	}
	var out []string
	add := func(kind attack.RelationKind, id string) {
		for _, r := range l.kb.RelationsOfSource(kind, id) {
			out = append(out, r.TechniqueID)
		}
	}
	for _, g := range groups {
		if x, ok := l.groups[strings.ToLower(g)]; ok {
			add(attack.GroupUses, x.ID)
		}
	}
	for _, s := range malware {
		if x, ok := l.software[strings.ToLower(s)]; ok {
			add(attack.SoftwareUses, x.ID)
		}
	}
	return uniq(out)
}

// Names returns "G0016 APT29" for each group or software ID the knowledge
// base knows, the entry itself otherwise.
func (l *Linker) Names(ids []string) []string {
	l.index()
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		k := strings.ToLower(id)
		if g, ok := l.groups[k]; ok && strings.EqualFold(g.ID, id) {
			out = append(out, g.ID+" "+g.Name)
		} else if s, ok := l.software[k]; ok && strings.EqualFold(s.ID, id) {
			out = append(out, s.ID+" "+s.Name)
		} else {
			out = append(out, id)
		}
	}
	return out
}

// ResolveFeed resolves the ATT&CK links of every indicator of f.
func (l *Linker) ResolveFeed(f *Feed) {
	for i := range f.Indicators {
		l.Resolve(&f.Indicators[i])
	}
}
