package attack

import (
	"sort"
	"strconv"
	"strings"
)

// Overlay is what Quarry knows of a later ATT&CK release without its STIX
// bundle: the tactics of its matrix, the ID, name and tactics of each
// technique, and the IDs it revoked. It is laid over a KB with WithOverlay.
type Overlay struct {
	Version    string             `json:"version"`
	Tactics    []OverlayTactic    `json:"tactics"`
	Techniques []OverlayTechnique `json:"techniques"`
	Redirects  []OverlayRedirect  `json:"redirects"`
}

// OverlayTactic is one tactic of the overlay's matrix.
type OverlayTactic struct {
	ID          string `json:"id"`
	ShortName   string `json:"shortname"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	MatrixOrder int    `json:"matrix_order"`
}

// OverlayTechnique is one technique of the overlay.
type OverlayTechnique struct {
	ID             string   `json:"id"`
	Name           string   `json:"name"`
	Tactics        []string `json:"tactics"`
	IsSubtechnique bool     `json:"is_subtechnique,omitempty"`
	Parent         string   `json:"parent,omitempty"`
}

// OverlayRedirect says the overlay's release revoked OldID in favour of
// NewID.
type OverlayRedirect struct {
	OldID string `json:"old_id"`
	NewID string `json:"new_id"`
}

// v19OnlyNote is the description of a technique only the overlay knows.
const v19OnlyNote = "ATT&CK v19 technique. Quarry's ATT&CK data is v18.1 with a v19 overlay, which gives only this technique's ID, name and tactics: no description, platforms, detection or relations."

// WithOverlay returns a new KB: kb with o laid over it. The overlay applies
// only to a base of an older major version; over a base as new as the
// overlay, the result is kb's content unchanged.
func (kb *KB) WithOverlay(o *Overlay) *KB {
	snap := kb.snap.clone()
	applyOverlay(&snap, o)
	return newKB(snap)
}

// clone copies the slices an overlay modifies.
func (s snapshot) clone() snapshot {
	c := s
	c.Techniques = append([]Technique(nil), s.Techniques...)
	c.Tactics = append([]Tactic(nil), s.Tactics...)
	c.Redirects = append([]IDRedirect(nil), s.Redirects...)
	return c
}

// overlayApplies reports whether an overlay of version ov still adds to a
// base of version base: only when the base's major version is older.
func overlayApplies(base, ov string) bool {
	b, errB := strconv.Atoi(majorOf(base))
	v, errV := strconv.Atoi(majorOf(ov))
	if errV != nil {
		return false
	}
	return errB != nil || b < v
}

func majorOf(v string) string {
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	if dot := strings.IndexByte(v, '.'); dot >= 0 {
		v = v[:dot]
	}
	return v
}

func applyOverlay(snap *snapshot, o *Overlay) {
	if o == nil || !overlayApplies(snap.Version, o.Version) {
		return
	}
	snap.OverlayVersion = o.Version
	order := make(map[string]int, len(o.Tactics))
	for _, t := range o.Tactics {
		order[t.ShortName] = t.MatrixOrder
	}
	known := make(map[string]bool, len(snap.Tactics))
	for i := range snap.Tactics {
		t := &snap.Tactics[i]
		known[t.ShortName] = true
		t.MatrixOrderV19 = order[t.ShortName]
	}
	for _, t := range o.Tactics {
		if known[t.ShortName] {
			continue
		}
		snap.Tactics = append(snap.Tactics, Tactic{
			ID: t.ID, ShortName: t.ShortName, Name: t.Name, Description: t.Description,
			URL:         "https://attack.mitre.org/tactics/" + t.ID,
			MatrixOrder: t.MatrixOrder, MatrixOrderV19: t.MatrixOrder,
			AttackVersion: o.Version,
		})
	}
	overlayTechniques(snap, o, order)
	overlayRedirects(snap, o)
}

func overlayTechniques(snap *snapshot, o *Overlay, order map[string]int) {
	idx := make(map[string]int, len(snap.Techniques))
	for i, t := range snap.Techniques {
		idx[normID(t.ID)] = i
	}
	for _, ot := range o.Techniques {
		tactics := append([]string(nil), ot.Tactics...)
		sort.SliceStable(tactics, func(i, j int) bool { return order[tactics[i]] < order[tactics[j]] })
		if i, ok := idx[normID(ot.ID)]; ok {
			snap.Techniques[i].NameV19 = ot.Name
			snap.Techniques[i].TacticsV19 = tactics
			continue
		}
		snap.Techniques = append(snap.Techniques, Technique{
			ID: ot.ID, Name: ot.Name, NameV19: ot.Name,
			Tactics: tactics, TacticsV19: tactics,
			IsSubtechnique: ot.IsSubtechnique, ParentID: ot.Parent,
			Description:   v19OnlyNote,
			URL:           techniqueURL(ot.ID),
			AttackVersion: o.Version,
		})
	}
}

func overlayRedirects(snap *snapshot, o *Overlay) {
	idx := make(map[string]int, len(snap.Techniques))
	for i, t := range snap.Techniques {
		idx[normID(t.ID)] = i
	}
	have := make(map[[2]string]bool, len(snap.Redirects))
	for _, r := range snap.Redirects {
		have[[2]string{normID(r.OldID), normID(r.NewID)}] = true
	}
	for _, r := range o.Redirects {
		if i, ok := idx[normID(r.OldID)]; ok {
			snap.Techniques[i].ReplacedByV19 = r.NewID
		}
		if have[[2]string{normID(r.OldID), normID(r.NewID)}] {
			continue
		}
		snap.Redirects = append(snap.Redirects, IDRedirect{
			OldID: r.OldID, NewID: r.NewID, Kind: RedirectRevoked,
			ObjectType: "technique", AttackVersion: o.Version,
		})
	}
	sort.SliceStable(snap.Redirects, func(i, j int) bool { return snap.Redirects[i].OldID < snap.Redirects[j].OldID })
}

// techniqueURL is the attack.mitre.org page of a technique ID:
// T1059.001 → https://attack.mitre.org/techniques/T1059/001.
func techniqueURL(id string) string {
	return "https://attack.mitre.org/techniques/" + strings.Replace(id, ".", "/", 1)
}
