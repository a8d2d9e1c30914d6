package attack

import (
	"sort"
	"strings"
)

// Search returns the techniques whose ID, name or description contains the
// query (case-insensitive), best first: an exact ID, then an ID prefix, then
// a name match, then a description match; live techniques before revoked or
// deprecated ones, then by ID. limit <= 0 means no limit.
func (kb *KB) Search(query string, limit int) []*Technique {
	q := strings.ToLower(strings.TrimSpace(query))
	if q == "" {
		return nil
	}
	type hit struct {
		t     *Technique
		score int
	}
	var hits []hit
	for i := range kb.snap.Techniques {
		t := &kb.snap.Techniques[i]
		id := strings.ToLower(t.ID)
		score := 0
		switch {
		case id == q:
			score = 4
		case strings.HasPrefix(id, q):
			score = 3
		case strings.Contains(strings.ToLower(t.Name), q),
			strings.Contains(strings.ToLower(t.NameV19), q):
			score = 2
		case strings.Contains(strings.ToLower(t.Description), q):
			score = 1
		}
		if score == 0 {
			continue
		}
		if t.Live() {
			score += 10
		}
		hits = append(hits, hit{t, score})
	}
	sort.SliceStable(hits, func(i, j int) bool {
		if hits[i].score != hits[j].score {
			return hits[i].score > hits[j].score
		}
		return hits[i].t.ID < hits[j].t.ID
	})
	if limit > 0 && len(hits) > limit {
		hits = hits[:limit]
	}
	out := make([]*Technique, len(hits))
	for i, h := range hits {
		out[i] = h.t
	}
	return out
}

// Counts summarises a KB. Live means neither revoked nor deprecated; the
// technique counts are of the base bundle's techniques.
type Counts struct {
	Version            string
	Techniques         int // live techniques and sub-techniques of the base bundle
	ParentTechniques   int
	Subtechniques      int
	Tactics            int // of the base bundle
	Mitigations        int // live
	Groups             int // live
	Software           int // live
	Redirects          int
	TechniquesV19Added int // techniques only the v19 overlay knows
	TacticsV19         int // tactics of the v19 matrix, 0 without the overlay
}

// Counts returns the KB's counts.
func (kb *KB) Counts() Counts {
	c := Counts{Version: kb.snap.Version, Redirects: len(kb.snap.Redirects)}
	for i := range kb.snap.Techniques {
		t := &kb.snap.Techniques[i]
		switch {
		case t.AttackVersion != kb.snap.Version:
			c.TechniquesV19Added++
		case !t.Live():
		case t.IsSubtechnique:
			c.Techniques++
			c.Subtechniques++
		default:
			c.Techniques++
			c.ParentTechniques++
		}
	}
	c.Tactics = len(kb.Tactics())
	c.TacticsV19 = len(kb.TacticsV19())
	for i := range kb.snap.Mitigations {
		if kb.snap.Mitigations[i].Live() {
			c.Mitigations++
		}
	}
	for i := range kb.snap.Groups {
		if kb.snap.Groups[i].Live() {
			c.Groups++
		}
	}
	for i := range kb.snap.Software {
		if kb.snap.Software[i].Live() {
			c.Software++
		}
	}
	return c
}
