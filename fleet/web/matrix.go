package web

import (
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/tables/ioa"
)

// matrixModel is the static shape of the matrix: tactics in matrix order,
// each with its techniques and their sub-techniques.
type matrixModel struct {
	Version string // ATT&CK version: "18.1" or "19"
	Tactics []matrixTactic
	// cells: every technique and sub-technique ID shown
	cells map[string]bool
}

// ATT&CK versions of the matrix page (?attack=).
const (
	matrixV18 = "18.1"
	matrixV19 = "19"
)

type matrixTactic struct {
	Tactic     *attack.Tactic
	Techniques []matrixTech
}

type matrixTech struct {
	T    *attack.Technique
	Subs []*attack.Technique
}

// buildMatrix is the base bundle's matrix (v18.1: 14 tactics).
func buildMatrix(kb *attack.KB) *matrixModel {
	var tactics []*attack.Tactic
	for _, tac := range kb.Tactics() {
		tactics = append(tactics, tac)
	}
	return assembleMatrix(matrixV18, tactics, func(tac *attack.Tactic) []*attack.Technique {
		var out []*attack.Technique
		for _, t := range kb.TechniquesByTactic(tac.ShortName) {
			// Not the v19 overlay's techniques or placements.
			if t.AttackVersion == kb.Version() && slices.Contains(t.Tactics, tac.ShortName) {
				out = append(out, t)
			}
		}
		return out
	})
}

// buildMatrixV19 is the v19 matrix laid over v18.1 (15 tactics: Stealth for
// Defense Evasion, Defense Impairment added): the techniques present in
// v19 under their v19 tactics and names. Nil without a v19 overlay.
func buildMatrixV19(kb *attack.KB) *matrixModel {
	tactics := kb.TacticsV19()
	if len(tactics) == 0 {
		return nil
	}
	byTactic := map[string][]*attack.Technique{}
	for i := range kb.Techniques() {
		t := &kb.Techniques()[i]
		if t.Revoked || t.Deprecated || t.ReplacedByV19 != "" {
			continue
		}
		for _, tac := range t.TacticsV19 {
			byTactic[tac] = append(byTactic[tac], t)
		}
	}
	return assembleMatrix(matrixV19, tactics, func(tac *attack.Tactic) []*attack.Technique { return byTactic[tac.ShortName] })
}

// assembleMatrix lays out the tactics with their techniques (by name) and
// each technique's sub-techniques.
func assembleMatrix(version string, tactics []*attack.Tactic, techniques func(*attack.Tactic) []*attack.Technique) *matrixModel {
	m := &matrixModel{Version: version, cells: map[string]bool{}}
	for _, tac := range tactics {
		subs := map[string][]*attack.Technique{}
		var parents []*attack.Technique
		for _, t := range techniques(tac) {
			m.cells[t.ID] = true
			if t.IsSubtechnique {
				subs[t.ParentID] = append(subs[t.ParentID], t)
			} else {
				parents = append(parents, t)
			}
		}
		name := func(t *attack.Technique) string { return techName(version, t) }
		sort.Slice(parents, func(i, j int) bool { return name(parents[i]) < name(parents[j]) })
		mt := matrixTactic{Tactic: tac}
		for _, p := range parents {
			ss := subs[p.ID]
			sort.Slice(ss, func(i, j int) bool { return ss[i].ID < ss[j].ID })
			mt.Techniques = append(mt.Techniques, matrixTech{T: p, Subs: ss})
		}
		m.Tactics = append(m.Tactics, mt)
	}
	return m
}

// techName is a technique's name in the matrix version.
func techName(version string, t *attack.Technique) string {
	if version == matrixV19 && t.NameV19 != "" {
		return t.NameV19
	}
	return t.Name
}

// placeScores maps scores keyed by technique ID (rules and detections carry
// current, v19 IDs: T1685 for v18.1's T1562.001) onto the cells of matrix
// m. An ID without a cell moves to the technique it replaced or that
// replaced it (a sub-technique without one to its parent's), so that no
// rule or detection drops out of either version's matrix; placed[cell]
// lists the IDs moved there, unplaced the IDs no cell takes.
func placeScores(kb *attack.KB, m *matrixModel, sc map[string]attack.LayerScore) (out map[string]attack.LayerScore, placed map[string][]string, unplaced []string) {
	out = map[string]attack.LayerScore{}
	placed = map[string][]string{}
	for id, s := range sc {
		cell := cellFor(kb, m, id)
		if cell == "" {
			unplaced = append(unplaced, id)
			continue
		}
		if cell != id {
			placed[cell] = append(placed[cell], id)
		}
		o := out[cell]
		o.Score += s.Score
		o.Names = append(o.Names, s.Names...)
		out[cell] = o
	}
	for cell, ids := range placed {
		sort.Strings(ids)
		placed[cell] = ids
		o := out[cell]
		sort.Strings(o.Names)
		o.Names = slices.Compact(o.Names)
		out[cell] = o
	}
	sort.Strings(unplaced)
	return out, placed, unplaced
}

// cellFor returns the cell of m that technique id is shown in, "" if none
// (see attack.KB.IDInVersion).
func cellFor(kb *attack.KB, m *matrixModel, id string) string {
	if cell := kb.IDInVersion(id, m.Version == matrixV19); m.cells[cell] {
		return cell
	}
	return ""
}

// coverage maps each technique to the titles of the rules tagged with it.
func coverage(rules []*detections.Rule) map[string][]string {
	out := map[string][]string{}
	for _, r := range rules {
		for _, id := range ioa.TechniqueIDs(r) {
			out[id] = append(out[id], r.Title)
		}
	}
	for id := range out {
		sort.Strings(out[id])
	}
	return out
}

// layerQuery is a matrix layer request: which layer, time window, hosts.
type layerQuery struct {
	Layer   string // coverage or detections
	Attack  string // matrix version: matrixV18 or matrixV19
	Window  string
	Hosts   string
	Since   time.Time
	HostIDs []string
	Unknown []string
}

func (ui *UI) parseLayerQuery(r *http.Request) (layerQuery, error) {
	q := r.URL.Query()
	lq := layerQuery{Layer: q.Get("layer"), Window: q.Get("since"), Hosts: strings.TrimSpace(q.Get("hosts"))}
	if lq.Layer != "detections" {
		lq.Layer = "coverage"
	}
	if lq.Window == "" {
		lq.Window = "7d"
	}
	lq.Attack = matrixV18
	if q.Get("attack") == matrixV19 && ui.matrixV19 != nil {
		lq.Attack = matrixV19
	}
	var err error
	if lq.Since, err = parseWindow(lq.Window, ui.cfg.Now()); err != nil {
		return lq, err
	}
	lq.HostIDs, lq.Unknown, err = ui.hostIDs(r.Context(), splitList(lq.Hosts))
	return lq, err
}

// scores returns the layer's score and names per technique ID.
func (ui *UI) scores(r *http.Request, lq layerQuery) (map[string]attack.LayerScore, error) {
	out := map[string]attack.LayerScore{}
	if lq.Layer == "coverage" {
		for id, names := range ui.cover {
			out[id] = attack.LayerScore{Score: float64(len(names)), Names: names}
		}
		return out, nil
	}
	counts, err := ui.cfg.Store.CountDetections(r.Context(), store.DetectionFilter{Since: lq.Since, HostIDs: lq.HostIDs},
		store.KeyTechnique)
	if err != nil {
		return nil, err
	}
	for _, c := range counts {
		out[c.Keys[0]] = attack.LayerScore{Score: float64(c.N)}
	}
	return out, nil
}

// cellView is one technique cell of the rendered matrix.
type cellView struct {
	ID, Name string
	Score    float64
	SubScore float64 // sum of the sub-techniques' scores
	Heat     int     // 0 (none) to 5
	Subs     []cellView
	Tip      string
}

type tacticView struct {
	ID, Name, Short string
	Cells           []cellView
	Scored          int
}

type matrixView struct {
	Q        layerQuery
	HasV19   bool
	Unplaced string // technique IDs with a score and no cell in this version
	Windows  any
	Tactics  []tacticView
	Max      float64
	Legend   []legendItem
	Label    string
	Scored   int
	Total    float64
	Unknown  string
	Subtitle string
}

type legendItem struct {
	Heat  int
	Label string
}

// heat buckets a score into 1..5 (0 for none) on a square-root scale, so a
// few hot techniques do not wash out the rest.
func heat(score, maxScore float64) int {
	if score <= 0 || maxScore <= 0 {
		return 0
	}
	h := int(math.Ceil(5 * math.Sqrt(score/maxScore)))
	return min(max(h, 1), 5)
}

// layerRequest reads a matrix or layer request and scores its layer; on a
// bad request or a failure it has answered, and ok is false.
func (ui *UI) layerRequest(w http.ResponseWriter, r *http.Request) (lq layerQuery, sc map[string]attack.LayerScore, ok bool) {
	lq, err := ui.parseLayerQuery(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return lq, nil, false
	}
	if sc, err = ui.scores(r, lq); err != nil {
		ui.fail(w, r, err)
		return lq, nil, false
	}
	return lq, sc, true
}

func (ui *UI) handleMatrix(w http.ResponseWriter, r *http.Request) {
	lq, sc, ok := ui.layerRequest(w, r)
	if !ok {
		return
	}
	model := ui.matrixFor(lq)
	sc, placed, unplaced := placeScores(ui.cfg.KB, model, sc)
	v := matrixView{Q: lq, Windows: windows, Unknown: strings.Join(lq.Unknown, ", "), HasV19: ui.matrixV19 != nil,
		Unplaced: strings.Join(unplaced, ", ")}
	for _, s := range sc {
		v.Max = max(v.Max, s.Score)
	}
	v.Label = "enabled rules"
	if lq.Layer == "detections" {
		v.Label = "detections"
	}
	scored := map[string]bool{}
	tip := func(t *attack.Technique, s attack.LayerScore) string {
		tip := t.ID + " " + techName(model.Version, t)
		if ids := placed[t.ID]; len(ids) > 0 {
			tip += " (with " + strings.Join(ids, ", ") + ", of ATT&CK "
			if model.Version == matrixV19 {
				tip += "v18.1)"
			} else {
				tip += "v19)"
			}
		}
		if s.Score > 0 {
			tip += fmt.Sprintf(" — %g %s", s.Score, v.Label)
			if len(s.Names) > 0 {
				names := s.Names
				if len(names) > 8 {
					names = append(names[:8:8], fmt.Sprintf("… %d more", len(s.Names)-8))
				}
				tip += ": " + strings.Join(names, "; ")
			}
		}
		return tip
	}
	for _, mt := range model.Tactics {
		tv := tacticView{ID: mt.Tactic.ID, Name: mt.Tactic.Name, Short: mt.Tactic.ShortName}
		for _, te := range mt.Techniques {
			s := sc[te.T.ID]
			c := cellView{ID: te.T.ID, Name: techName(model.Version, te.T), Score: s.Score, Heat: heat(s.Score, v.Max), Tip: tip(te.T, s)}
			if s.Score > 0 {
				scored[te.T.ID] = true
			}
			hot := s.Score > 0
			for _, st := range te.Subs {
				ss := sc[st.ID]
				c.SubScore += ss.Score
				if ss.Score > 0 {
					scored[st.ID] = true
					hot = true
				}
				c.Subs = append(c.Subs, cellView{ID: st.ID, Name: techName(model.Version, st), Score: ss.Score, Heat: heat(ss.Score, v.Max), Tip: tip(st, ss)})
			}
			if hot {
				tv.Scored++
			}
			tv.Cells = append(tv.Cells, c)
		}
		v.Tactics = append(v.Tactics, tv)
	}
	v.Scored = len(scored)
	for id := range scored {
		v.Total += sc[id].Score
	}
	for h := 1; h <= 5; h++ {
		lo := v.Max * float64((h-1)*(h-1)) / 25
		hi := v.Max * float64(h*h) / 25
		label := fmt.Sprintf("%s–%s", trimFloat(math.Floor(lo)+1), trimFloat(math.Floor(hi)))
		if math.Floor(lo)+1 >= math.Floor(hi) {
			label = trimFloat(math.Floor(hi))
		}
		if v.Max == 0 || math.Floor(hi) < math.Floor(lo)+1 {
			continue
		}
		v.Legend = append(v.Legend, legendItem{Heat: h, Label: label})
	}
	ui.render(w, r, "matrix", "ATT&CK matrix", v)
}

func trimFloat(f float64) string { return fmt.Sprintf("%g", f) }

// handleLayer downloads the layer as an ATT&CK Navigator layer (4.5).
func (ui *UI) handleLayer(w http.ResponseWriter, r *http.Request) {
	lq, sc, ok := ui.layerRequest(w, r)
	if !ok {
		return
	}
	newLayer := attack.NewLayer
	if ui.matrixFor(lq).Version == matrixV19 {
		newLayer = attack.NewLayerV19
	}
	var l *attack.Layer
	if lq.Layer == "coverage" {
		l = newLayer(ui.cfg.KB, "Quarry detection coverage",
			fmt.Sprintf("Enabled rules per technique (%d rules)", len(ui.cfg.Rules)), "enabled rules", sc)
	} else {
		desc := "Fleet detections per technique"
		if !lq.Since.IsZero() {
			desc += " since " + lq.Since.UTC().Format(time.RFC3339)
		}
		if lq.Hosts != "" {
			desc += " on " + lq.Hosts
		}
		l = newLayer(ui.cfg.KB, "Quarry fleet detections", desc, "detections", sc)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="quarry-%s-layer.json"`, lq.Layer))
	if err := l.Write(w); err != nil {
		ui.cfg.OnError(r, err)
	}
}

// matrixFor returns the matrix of the query's ATT&CK version.
func (ui *UI) matrixFor(lq layerQuery) *matrixModel {
	if lq.Attack == matrixV19 && ui.matrixV19 != nil {
		return ui.matrixV19
	}
	return ui.matrix
}
