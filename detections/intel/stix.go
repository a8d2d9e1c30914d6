package intel

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
)

// stixObject holds the properties Quarry reads of any STIX 2.1 object.
type stixObject struct {
	Type        string   `json:"type"`
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Aliases     []string `json:"aliases"`
	Pattern     string   `json:"pattern"`
	PatternType string   `json:"pattern_type"`
	ValidUntil  string   `json:"valid_until"`
	Confidence  *int     `json:"confidence"`
	Revoked     bool     `json:"revoked"`
	ExternalRef []struct {
		SourceName string `json:"source_name"`
		ExternalID string `json:"external_id"`
	} `json:"external_references"`
	RelationshipType string `json:"relationship_type"`
	SourceRef        string `json:"source_ref"`
	TargetRef        string `json:"target_ref"`
}

var attackIDRE = regexp.MustCompile(`^(T\d{4}(\.\d{3})?|G\d{4}|S\d{4})$`)

// attackID returns the object's ATT&CK ID (T…, G…, S…) from its external
// references, "" when it has none.
func (o *stixObject) attackID() string {
	for _, r := range o.ExternalRef {
		id := strings.ToUpper(strings.TrimSpace(r.ExternalID))
		if attackIDRE.MatchString(id) {
			return id
		}
	}
	return ""
}

// ReadSTIX reads a STIX 2.1 bundle: each indicator whose pattern is ORs of
// comparisons over file hashes, IPv4/IPv6 addresses (networks too), domain
// names and URLs gives one indicator per comparison; other patterns are
// skipped and counted. The indicator's "indicates" relationships to
// attack-pattern, intrusion-set, malware and tool objects (and those
// objects' "uses" of attack patterns) give its ATT&CK techniques, groups and
// software.
func ReadSTIX(r io.Reader, name string, o Options) (*Feed, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var bundle struct {
		Type    string            `json:"type"`
		Objects []json.RawMessage `json:"objects"`
	}
	if err := json.Unmarshal(data, &bundle); err != nil {
		return nil, fmt.Errorf("%s: %w", name, jsonErr(data, err))
	}
	if bundle.Type != "bundle" {
		return nil, fmt.Errorf("%s: not a STIX bundle (type %q)", name, bundle.Type)
	}
	objs := make([]stixObject, len(bundle.Objects))
	byID := make(map[string]*stixObject, len(objs))
	for i, raw := range bundle.Objects {
		if err := json.Unmarshal(raw, &objs[i]); err != nil {
			return nil, fmt.Errorf("%s: object %d: %w", name, i, err)
		}
		if objs[i].Type == "" || objs[i].ID == "" {
			return nil, fmt.Errorf("%s: object %d (%q): no type or id", name, i, objs[i].ID)
		}
		byID[objs[i].ID] = &objs[i]
	}
	out := map[string][]string{}  // source_ref → indicates target ids
	uses := map[string][]string{} // source_ref → used target ids
	for i := range objs {
		ob := &objs[i]
		if ob.Type != "relationship" {
			continue
		}
		if ob.SourceRef == "" || ob.TargetRef == "" {
			return nil, fmt.Errorf("%s: relationship %s: no source_ref or target_ref", name, ob.ID)
		}
		switch ob.RelationshipType {
		case "indicates":
			out[ob.SourceRef] = append(out[ob.SourceRef], ob.TargetRef)
		case "uses", "attributed-to":
			uses[ob.SourceRef] = append(uses[ob.SourceRef], ob.TargetRef)
		}
	}
	f := newFeed(FormatSTIX, name, o)
	for i := range objs {
		ob := &objs[i]
		if ob.Type != "indicator" || ob.Revoked {
			continue
		}
		if ob.PatternType != "" && ob.PatternType != "stix" {
			f.skip(ob.ID, fmt.Sprintf("pattern_type %q", ob.PatternType), true)
			continue
		}
		cmps, err := ParsePattern(ob.Pattern)
		if err != nil {
			f.skip(ob.ID, err.Error(), errors.Is(err, ErrUnsupportedPattern))
			continue
		}
		var base Indicator
		base.Ref = ob.ID
		if ob.Confidence != nil {
			base.Confidence = *ob.Confidence
		}
		if ob.ValidUntil != "" {
			t, err := time.Parse(time.RFC3339Nano, ob.ValidUntil)
			if err != nil {
				f.skip(ob.ID, fmt.Sprintf("valid_until %q: %v", ob.ValidUntil, err), false)
				continue
			}
			base.ValidUntil = t.UTC()
		}
		if id := ob.attackID(); strings.HasPrefix(id, "T") {
			base.Techniques = append(base.Techniques, id)
		}
		linkSTIX(&base, byID, out, uses, ob.ID)
		for _, c := range cmps {
			t, v, err := c.Indicator()
			if err != nil {
				f.skip(ob.ID, err.Error(), errors.Is(err, ErrUnsupportedPattern))
				continue
			}
			in := base
			in.Type, in.Value = t, v
			in.Techniques = append([]string(nil), base.Techniques...)
			in.Groups = append([]string(nil), base.Groups...)
			in.Malware = append([]string(nil), base.Malware...)
			f.add(in)
		}
	}
	return f, nil
}

// linkSTIX adds to in the ATT&CK objects the indicator indicates, and the
// techniques and groups those objects use or are attributed to (one hop).
func linkSTIX(in *Indicator, byID map[string]*stixObject, indicates, uses map[string][]string, id string) {
	var visit func(ref string, depth int)
	visit = func(ref string, depth int) {
		ob, ok := byID[ref]
		if !ok {
			return
		}
		attackID := ob.attackID()
		switch ob.Type {
		case "attack-pattern":
			if attackID != "" {
				in.Techniques = append(in.Techniques, attackID)
			}
		case "intrusion-set", "threat-actor":
			if attackID != "" {
				in.Groups = append(in.Groups, attackID)
			} else if ob.Name != "" {
				in.Groups = append(in.Groups, ob.Name)
			}
		case "malware", "tool":
			if attackID != "" {
				in.Malware = append(in.Malware, attackID)
			} else if ob.Name != "" {
				in.Malware = append(in.Malware, ob.Name)
			}
		}
		if depth == 0 {
			for _, next := range uses[ref] {
				visit(next, 1)
			}
		}
	}
	for _, ref := range indicates[id] {
		visit(ref, 0)
	}
}

// jsonErr adds the line and column of a JSON syntax error.
func jsonErr(data []byte, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	off := int64(-1)
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	}
	if off < 0 || off > int64(len(data)) {
		return err
	}
	line, col := 1, 1
	for _, c := range data[:off] {
		if c == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return fmt.Errorf("line %d column %d: %w", line, col, err)
}
