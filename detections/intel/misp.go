package intel

import (
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
)

type mispTag struct {
	Name string `json:"name"`
}

type mispAttribute struct {
	Type  string          `json:"type"`
	Value string          `json:"value"`
	UUID  string          `json:"uuid"`
	ToIDS json.RawMessage `json:"to_ids"`
	Tag   []mispTag       `json:"Tag"`
}

type mispGalaxy struct {
	Type    string `json:"type"`
	Cluster []struct {
		Value   string `json:"value"`
		TagName string `json:"tag_name"`
	} `json:"GalaxyCluster"`
}

type mispEvent struct {
	UUID      string          `json:"uuid"`
	Info      string          `json:"info"`
	Attribute []mispAttribute `json:"Attribute"`
	Object    []struct {
		Name      string          `json:"name"`
		Attribute []mispAttribute `json:"Attribute"`
	} `json:"Object"`
	Tag    []mispTag    `json:"Tag"`
	Galaxy []mispGalaxy `json:"Galaxy"`
}

// mispTypes maps MISP attribute types to indicator types; a composite type
// (filename|sha256, ip-dst|port) maps to the type of the part Quarry keeps,
// named by mispPart.
var mispTypes = map[string]Type{
	"md5": MD5, "sha1": SHA1, "sha256": SHA256,
	"filename|md5": MD5, "filename|sha1": SHA1, "filename|sha256": SHA256,
	"ip-src": "ip", "ip-dst": "ip", "ip-src|port": "ip", "ip-dst|port": "ip", "domain|ip": Domain,
	"domain": Domain, "hostname": Domain, "hostname|port": Domain,
	"url": URL, "uri": URL,
}

// mispPart says which part of a composite value holds the indicator.
func mispPart(typ, value string) string {
	a, b, ok := strings.Cut(value, "|")
	if !ok {
		return value
	}
	if strings.HasPrefix(typ, "filename|") {
		return b
	}
	return a
}

// ReadMISP reads a MISP JSON event export: {"Event": …}, {"response":
// [{"Event": …}…]} or [{"Event": …}…]. Attributes (of the event and of its
// objects) of the types in mispTypes whose to_ids is not false become
// indicators; others are skipped and counted. The event's and attribute's
// tags and galaxies (mitre-attack-pattern, mitre-intrusion-set,
// threat-actor, mitre-malware, mitre-tool, malpedia) give ATT&CK links.
func ReadMISP(r io.Reader, name string, o Options) (*Feed, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	type wrap struct {
		Event *mispEvent `json:"Event"`
	}
	var events []*mispEvent
	var one struct {
		Event    *mispEvent `json:"Event"`
		Response []wrap     `json:"response"`
	}
	trim := strings.TrimLeft(string(data[:min(len(data), 64)]), " \t\r\n\ufeff")
	if strings.HasPrefix(trim, "[") {
		var list []wrap
		if err := json.Unmarshal(data, &list); err != nil {
			return nil, fmt.Errorf("%s: %w", name, jsonErr(data, err))
		}
		for _, w := range list {
			events = append(events, w.Event)
		}
	} else {
		if err := json.Unmarshal(data, &one); err != nil {
			return nil, fmt.Errorf("%s: %w", name, jsonErr(data, err))
		}
		if one.Event != nil {
			events = append(events, one.Event)
		}
		for _, w := range one.Response {
			events = append(events, w.Event)
		}
	}
	if len(events) == 0 {
		return nil, fmt.Errorf("%s: not a MISP export (no Event)", name)
	}
	f := newFeed(FormatMISP, name, o)
	for i, ev := range events {
		if ev == nil {
			return nil, fmt.Errorf("%s: event %d: no Event object", name, i)
		}
		var base Indicator
		for _, t := range ev.Tag {
			tagLinks(&base, t.Name)
		}
		for _, g := range ev.Galaxy {
			for _, c := range g.Cluster {
				tag := c.TagName
				if tag == "" {
					tag = fmt.Sprintf("misp-galaxy:%s=%q", g.Type, c.Value)
				}
				tagLinks(&base, tag)
			}
		}
		attrs := ev.Attribute
		for _, ob := range ev.Object {
			attrs = append(attrs, ob.Attribute...)
		}
		for j, a := range attrs {
			ref := a.UUID
			if ref == "" {
				ref = fmt.Sprintf("event %s attribute %d", ev.UUID, j)
			}
			t, ok := mispTypes[a.Type]
			if !ok {
				f.skip(ref, fmt.Sprintf("attribute type %q", a.Type), true)
				continue
			}
			if s := strings.Trim(string(a.ToIDS), `"`); s == "false" || s == "0" {
				f.skip(ref, "to_ids is false", true)
				continue
			}
			v := mispPart(a.Type, a.Value)
			if t == "ip" {
				if strings.Contains(v, "/") {
					t = CIDR
				} else if strings.Contains(v, ":") && !strings.Contains(v, ".") {
					t = IPv6
				} else {
					t = IPv4
				}
			}
			if t == Domain && strings.Contains(v, ":") && !strings.Contains(a.Type, "ip") {
				v, _, _ = strings.Cut(v, ":") // hostname|port written host:port
			}
			nv, err := Normalize(t, v)
			if err != nil {
				f.skip(ref, err.Error(), false)
				continue
			}
			if (t == IPv4 || t == IPv6) && strings.Contains(nv, "/") {
				t = CIDR
			}
			in := base
			in.Type, in.Value, in.Ref = t, nv, ref
			in.Techniques = append([]string(nil), base.Techniques...)
			in.Groups = append([]string(nil), base.Groups...)
			in.Malware = append([]string(nil), base.Malware...)
			for _, tg := range a.Tag {
				tagLinks(&in, tg.Name)
			}
			f.add(in)
		}
	}
	return f, nil
}

var (
	tagRE       = regexp.MustCompile(`^misp-galaxy:([a-z0-9-]+)="(.*)"$`)
	trailingIDs = regexp.MustCompile(`\b([TGS]\d{4}(?:\.\d{3})?)\s*$`)
)

// tagLinks adds the ATT&CK link a MISP galaxy tag names to in.
func tagLinks(in *Indicator, tag string) {
	m := tagRE.FindStringSubmatch(strings.TrimSpace(tag))
	if m == nil {
		return
	}
	kind, val := m[1], strings.TrimSpace(m[2])
	id := ""
	if n := trailingIDs.FindStringSubmatch(val); n != nil {
		id = n[1]
	}
	switch kind {
	case "mitre-attack-pattern", "mitre-enterprise-attack-attack-pattern":
		if strings.HasPrefix(id, "T") {
			in.Techniques = append(in.Techniques, id)
		}
	case "mitre-intrusion-set", "mitre-enterprise-attack-intrusion-set", "threat-actor":
		if strings.HasPrefix(id, "G") {
			in.Groups = append(in.Groups, id)
		} else if val != "" {
			in.Groups = append(in.Groups, val)
		}
	case "mitre-malware", "mitre-tool", "mitre-enterprise-attack-malware", "mitre-enterprise-attack-tool", "malpedia":
		if strings.HasPrefix(id, "S") {
			in.Malware = append(in.Malware, id)
		} else if val != "" {
			in.Malware = append(in.Malware, val)
		}
	}
}
