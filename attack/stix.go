package attack

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// indexed is a STIX object with its position in the bundle's objects array.
type indexed struct {
	i int
	o *stixObject
}

// stixSet is a bundle's objects, sorted by type.
type stixSet struct {
	byRef         map[string]indexed // every object with an id, by STIX id
	version       string             // x-mitre-collection x_mitre_version
	matrices      []indexed
	tactics       []indexed
	techniques    []indexed
	mitigations   []indexed
	groups        []indexed
	software      []indexed
	relationships []indexed
}

// ParseSTIX reads an ATT&CK STIX 2.1 bundle (such as MITRE's
// enterprise-attack.json) into a KB. Input that is not JSON, not a STIX
// bundle or not ATT&CK gives an error naming what is wrong and where.
func ParseSTIX(r io.Reader) (*KB, error) {
	snap, err := parseSnapshot(r)
	if err != nil {
		return nil, err
	}
	return newKB(snap), nil
}

func parseSnapshot(r io.Reader) (snapshot, error) {
	set := stixSet{byRef: make(map[string]indexed)}
	err := readBundle(r, func(i int, o *stixObject) error {
		if o.Type == "" {
			return errors.New("object has no \"type\"")
		}
		if o.ID == "" {
			return fmt.Errorf("%s object has no \"id\"", o.Type)
		}
		set.add(indexed{i, o})
		return nil
	})
	if err != nil {
		return snapshot{}, err
	}
	if len(set.techniques) == 0 {
		return snapshot{}, errors.New("stix: bundle has no attack-pattern objects: not an ATT&CK bundle")
	}
	if len(set.tactics) == 0 {
		return snapshot{}, errors.New("stix: bundle has no x-mitre-tactic objects: not an ATT&CK bundle")
	}
	if len(set.matrices) == 0 {
		return snapshot{}, errors.New("stix: bundle has no x-mitre-matrix object: not an ATT&CK bundle")
	}
	return set.build()
}

func (s *stixSet) add(x indexed) {
	s.byRef[x.o.ID] = x
	switch x.o.Type {
	case "x-mitre-collection":
		if s.version == "" {
			s.version = x.o.Version
		}
	case "x-mitre-matrix":
		s.matrices = append(s.matrices, x)
	case "x-mitre-tactic":
		s.tactics = append(s.tactics, x)
	case "attack-pattern":
		s.techniques = append(s.techniques, x)
	case "course-of-action":
		s.mitigations = append(s.mitigations, x)
	case "intrusion-set":
		s.groups = append(s.groups, x)
	case "malware", "tool":
		s.software = append(s.software, x)
	case "relationship":
		s.relationships = append(s.relationships, x)
	}
}

// attackID returns the ATT&CK ID of the object with the STIX id, or "".
func (s *stixSet) attackID(ref string) string {
	x, ok := s.byRef[ref]
	if !ok {
		return ""
	}
	id, _ := x.o.attackRef()
	return id
}

func (s *stixSet) build() (snapshot, error) {
	snap := snapshot{Version: s.version}
	tactics, err := s.buildTactics()
	if err != nil {
		return snapshot{}, err
	}
	snap.Tactics = tactics
	order := make(map[string]int, len(tactics))
	for _, t := range tactics {
		order[t.ShortName] = t.MatrixOrder
	}
	if snap.Techniques, err = s.buildTechniques(order); err != nil {
		return snapshot{}, err
	}
	if snap.Mitigations, err = s.buildMitigations(); err != nil {
		return snapshot{}, err
	}
	if snap.Groups, err = s.buildGroups(); err != nil {
		return snapshot{}, err
	}
	if snap.Software, err = s.buildSoftware(); err != nil {
		return snapshot{}, err
	}
	s.applyRelationships(&snap)
	s.applyDetection(snap.Techniques)
	snap.Redirects = bundleRedirects(&snap)
	return snap, nil
}

// buildTactics returns the tactics in the order of the matrix's tactic_refs;
// tactics the matrix leaves out follow, in bundle order.
func (s *stixSet) buildTactics() ([]Tactic, error) {
	matrix := s.matrices[0]
	for _, m := range s.matrices {
		if !m.o.Deprecated && !m.o.Revoked {
			matrix = m
			break
		}
	}
	placed := make(map[string]bool)
	var out []Tactic
	for j, ref := range matrix.o.TacticRefs {
		x, ok := s.byRef[ref]
		if !ok || x.o.Type != "x-mitre-tactic" {
			return nil, fmt.Errorf("stix: objects[%d] x-mitre-matrix %s: tactic_refs[%d] %q names no x-mitre-tactic in the bundle",
				matrix.i, matrix.o.ID, j, ref)
		}
		if placed[ref] {
			continue
		}
		t, err := s.tactic(x, len(out)+1)
		if err != nil {
			return nil, err
		}
		placed[ref] = true
		out = append(out, t)
	}
	for _, x := range s.tactics {
		if placed[x.o.ID] {
			continue
		}
		t, err := s.tactic(x, len(out)+1)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

func (s *stixSet) tactic(x indexed, order int) (Tactic, error) {
	id, url := x.o.attackRef()
	if x.o.ShortName == "" {
		return Tactic{}, fmt.Errorf("stix: objects[%d] x-mitre-tactic %s: no \"x_mitre_shortname\"", x.i, x.o.ID)
	}
	if id == "" {
		return Tactic{}, fmt.Errorf("stix: objects[%d] x-mitre-tactic %s: no mitre-attack external_id in \"external_references\"", x.i, x.o.ID)
	}
	return Tactic{
		ID:            id,
		ShortName:     x.o.ShortName,
		Name:          x.o.Name,
		Description:   x.o.Description,
		URL:           url,
		MatrixOrder:   order,
		Deprecated:    x.o.Deprecated,
		AttackVersion: s.version,
	}, nil
}

func (s *stixSet) buildTechniques(order map[string]int) ([]Technique, error) {
	out := make([]Technique, 0, len(s.techniques))
	for _, x := range s.techniques {
		o := x.o
		id, url := o.attackRef()
		if id == "" {
			return nil, fmt.Errorf("stix: objects[%d] attack-pattern %s: no mitre-attack external_id in \"external_references\"", x.i, o.ID)
		}
		t := Technique{
			ID:             id,
			Name:           o.Name,
			Tactics:        phaseTactics(o.KillChain, order),
			Platforms:      o.Platforms,
			IsSubtechnique: o.IsSubtechnique,
			Description:    o.Description,
			Detection:      strings.TrimSpace(o.Detection),
			URL:            url,
			Version:        o.Version,
			Deprecated:     o.Deprecated,
			Revoked:        o.Revoked,
			AttackVersion:  s.version,
		}
		if t.IsSubtechnique {
			if dot := strings.IndexByte(id, '.'); dot > 0 {
				t.ParentID = id[:dot]
			}
		}
		out = append(out, t)
	}
	return out, nil
}

// phaseTactics returns the ATT&CK tactic shortnames of kill chain phases in
// matrix order; phases naming no known tactic follow, as given.
func phaseTactics(phases []kcPhase, order map[string]int) []string {
	var out []string
	seen := make(map[string]bool, len(phases))
	for _, p := range phases {
		if p.PhaseName == "" || seen[p.PhaseName] {
			continue
		}
		if p.KillChainName != "" && !strings.HasPrefix(p.KillChainName, "mitre-") {
			continue
		}
		seen[p.PhaseName] = true
		out = append(out, p.PhaseName)
	}
	sort.SliceStable(out, func(i, j int) bool {
		oi, oj := order[out[i]], order[out[j]]
		if oi == 0 || oj == 0 {
			return oi != 0 && oj == 0
		}
		return oi < oj
	})
	return out
}

func (s *stixSet) buildMitigations() ([]Mitigation, error) {
	out := make([]Mitigation, 0, len(s.mitigations))
	for _, x := range s.mitigations {
		id, url := x.o.attackRef()
		if id == "" {
			return nil, fmt.Errorf("stix: objects[%d] course-of-action %s: no mitre-attack external_id in \"external_references\"", x.i, x.o.ID)
		}
		out = append(out, Mitigation{
			ID: id, Name: x.o.Name, Description: x.o.Description, URL: url,
			Version: x.o.Version, Deprecated: x.o.Deprecated, Revoked: x.o.Revoked,
			AttackVersion: s.version,
		})
	}
	return out, nil
}

func (s *stixSet) buildGroups() ([]Group, error) {
	out := make([]Group, 0, len(s.groups))
	for _, x := range s.groups {
		id, url := x.o.attackRef()
		if id == "" {
			return nil, fmt.Errorf("stix: objects[%d] intrusion-set %s: no mitre-attack external_id in \"external_references\"", x.i, x.o.ID)
		}
		out = append(out, Group{
			ID: id, Name: x.o.Name, Aliases: otherNames(x.o.Aliases, x.o.Name),
			Description: x.o.Description, URL: url, Version: x.o.Version,
			Deprecated: x.o.Deprecated, Revoked: x.o.Revoked, AttackVersion: s.version,
		})
	}
	return out, nil
}

func (s *stixSet) buildSoftware() ([]Software, error) {
	out := make([]Software, 0, len(s.software))
	for _, x := range s.software {
		id, url := x.o.attackRef()
		if id == "" {
			return nil, fmt.Errorf("stix: objects[%d] %s %s: no mitre-attack external_id in \"external_references\"", x.i, x.o.Type, x.o.ID)
		}
		out = append(out, Software{
			ID: id, Name: x.o.Name, Type: x.o.Type,
			Aliases:   otherNames(append(x.o.MitreAlias, x.o.Aliases...), x.o.Name),
			Platforms: x.o.Platforms, Description: x.o.Description, URL: url,
			Version: x.o.Version, Deprecated: x.o.Deprecated, Revoked: x.o.Revoked,
			AttackVersion: s.version,
		})
	}
	return out, nil
}

// otherNames returns aliases without the object's own name and duplicates.
func otherNames(aliases []string, name string) []string {
	var out []string
	seen := map[string]bool{strings.ToLower(name): true}
	for _, a := range aliases {
		k := strings.ToLower(strings.TrimSpace(a))
		if k == "" || seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, strings.TrimSpace(a))
	}
	return out
}
