package attack

import (
	"encoding/json"
	"io"
	"sort"
	"strings"
)

// Layer is an ATT&CK Navigator layer (layer format 4.5): a score and
// annotations per technique, shown by the Navigator as a heat map.
type Layer struct {
	Name        string            `json:"name"`
	Versions    LayerVersions     `json:"versions"`
	Domain      string            `json:"domain"`
	Description string            `json:"description"`
	Sorting     int               `json:"sorting"`
	Layout      LayerLayout       `json:"layout"`
	HideDisable bool              `json:"hideDisabled"`
	Techniques  []LayerTechnique  `json:"techniques"`
	Gradient    LayerGradient     `json:"gradient"`
	Legend      []LayerLegendItem `json:"legendItems"`
	Metadata    []LayerMetadata   `json:"metadata,omitempty"`
}

// LayerVersions names the ATT&CK, Navigator and layer format versions.
type LayerVersions struct {
	ATTACK    string `json:"attack"`
	Navigator string `json:"navigator"`
	Layer     string `json:"layer"`
}

// LayerLayout is how the Navigator lays the matrix out.
type LayerLayout struct {
	Layout                string `json:"layout"`
	ShowID                bool   `json:"showID"`
	ShowName              bool   `json:"showName"`
	ShowAggregateScores   bool   `json:"showAggregateScores"`
	CountUnscored         bool   `json:"countUnscored"`
	AggregateFunction     string `json:"aggregateFunction"`
	ExpandedSubtechniques string `json:"expandedSubtechniques"`
}

// LayerTechnique is one technique's cell, under one tactic (or every tactic
// of the technique when Tactic is empty).
type LayerTechnique struct {
	TechniqueID       string          `json:"techniqueID"`
	Tactic            string          `json:"tactic,omitempty"`
	Score             *float64        `json:"score,omitempty"`
	Comment           string          `json:"comment,omitempty"`
	Enabled           bool            `json:"enabled"`
	Metadata          []LayerMetadata `json:"metadata,omitempty"`
	Links             []LayerLink     `json:"links,omitempty"`
	ShowSubtechniques bool            `json:"showSubtechniques,omitempty"`
}

// LayerMetadata is a name/value annotation.
type LayerMetadata struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// LayerLink is a labelled URL.
type LayerLink struct {
	Label string `json:"label"`
	URL   string `json:"url"`
}

// LayerGradient maps scores to colours.
type LayerGradient struct {
	Colors   []string `json:"colors"`
	MinValue float64  `json:"minValue"`
	MaxValue float64  `json:"maxValue"`
}

// LayerLegendItem is one entry of the legend.
type LayerLegendItem struct {
	Label string `json:"label"`
	Color string `json:"color"`
}

// LayerScore is what a layer says of one technique: its score and the names
// (rules, hosts…) behind it.
type LayerScore struct {
	Score float64
	Names []string // shown in the comment and as metadata
}

// NewLayer builds a heat-map layer of the base bundle's ATT&CK version
// (v18.1) from per-technique scores. Each ID lands on its technique in that
// version (see IDInVersion: a v19 ID such as T1685 on the v18.1 technique
// it replaced, an old ID on its successor); each technique's cell is placed
// under each of its tactics so sub-techniques expand under their parent.
// scoreLabel names the score in the legend ("enabled rules", "hits").
func NewLayer(kb *KB, name, description, scoreLabel string, scores map[string]LayerScore) *Layer {
	return newLayer(kb, false, name, description, scoreLabel, scores)
}

// NewLayerV19 is NewLayer for ATT&CK v19 (a v18.1 ID revoked in v19 lands
// on its v19 successor; cells under the v19 tactics).
func NewLayerV19(kb *KB, name, description, scoreLabel string, scores map[string]LayerScore) *Layer {
	return newLayer(kb, true, name, description, scoreLabel, scores)
}

func newLayer(kb *KB, v19 bool, name, description, scoreLabel string, scores map[string]LayerScore) *Layer {
	merged := map[string]*LayerScore{}
	for id, s := range scores {
		key := kb.IDInVersion(id, v19)
		if key == "" {
			key = strings.ToUpper(id)
			if t, _, ok := kb.Resolve(id); ok {
				key = t.ID
			}
		}
		m := merged[key]
		if m == nil {
			m = &LayerScore{}
			merged[key] = m
		}
		m.Score += s.Score
		m.Names = append(m.Names, s.Names...)
	}
	ids := make([]string, 0, len(merged))
	maxScore := 0.0
	for id, s := range merged {
		ids = append(ids, id)
		maxScore = max(maxScore, s.Score)
	}
	sort.Strings(ids)
	version := kb.Version()
	if v19 {
		version = VersionV19
	}
	l := &Layer{
		Name:        name,
		Versions:    LayerVersions{ATTACK: majorVersion(version), Navigator: "5.1.0", Layer: "4.5"},
		Domain:      "enterprise-attack",
		Description: description,
		Sorting:     3,
		Layout: LayerLayout{Layout: "side", ShowID: true, ShowName: true, AggregateFunction: "average",
			ExpandedSubtechniques: "annotated"},
		Techniques: []LayerTechnique{},
		Gradient:   LayerGradient{Colors: []string{"#ffe766ff", "#ff6666ff"}, MinValue: 0, MaxValue: max(maxScore, 1)},
		Legend: []LayerLegendItem{
			{Label: "1 " + scoreLabel, Color: "#ffe766"},
			{Label: formatScore(max(maxScore, 1)) + " " + scoreLabel, Color: "#ff6666"},
		},
	}
	for _, id := range ids {
		s := merged[id]
		names := dedupe(s.Names)
		score := s.Score
		cell := LayerTechnique{TechniqueID: id, Score: &score, Enabled: true}
		if len(names) > 0 {
			cell.Comment = strings.Join(names, "; ")
			for _, n := range names {
				cell.Metadata = append(cell.Metadata, LayerMetadata{Name: "rule", Value: n})
			}
		}
		t, ok := kb.Technique(id)
		if ok && t.URL != "" {
			cell.Links = []LayerLink{{Label: "ATT&CK " + id, URL: t.URL}}
		}
		tactics := []string{""}
		switch {
		case ok && v19 && len(t.TacticsV19) > 0:
			tactics = t.TacticsV19
		case ok && len(t.Tactics) > 0:
			tactics = t.Tactics
		}
		for _, tac := range tactics {
			c := cell
			c.Tactic = tac
			l.Techniques = append(l.Techniques, c)
		}
	}
	return l
}

// Write writes the layer as indented JSON.
func (l *Layer) Write(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(l)
}

func majorVersion(v string) string {
	if i := strings.IndexByte(v, '.'); i > 0 {
		return v[:i]
	}
	return v
}

func formatScore(f float64) string {
	b, _ := json.Marshal(f)
	return string(b)
}

func dedupe(ss []string) []string {
	seen := map[string]bool{}
	out := ss[:0:0]
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}
