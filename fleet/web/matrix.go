package web

import (
	"fmt"
	"math"
	"net/http"
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
	Tactics []matrixTactic
}

type matrixTactic struct {
	Tactic     *attack.Tactic
	Techniques []matrixTech
}

type matrixTech struct {
	T    *attack.Technique
	Subs []*attack.Technique
}

func buildMatrix(kb *attack.KB) *matrixModel {
	m := &matrixModel{}
	for _, tac := range kb.Tactics() {
		all := kb.TechniquesByTactic(tac.ShortName)
		subs := map[string][]*attack.Technique{}
		var parents []*attack.Technique
		for _, t := range all {
			if t.IsSubtechnique {
				subs[t.ParentID] = append(subs[t.ParentID], t)
			} else {
				parents = append(parents, t)
			}
		}
		sort.Slice(parents, func(i, j int) bool { return parents[i].Name < parents[j].Name })
		mt := matrixTactic{Tactic: tac}
		for _, p := range parents {
			mt.Techniques = append(mt.Techniques, matrixTech{T: p, Subs: subs[p.ID]})
		}
		m.Tactics = append(m.Tactics, mt)
	}
	return m
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
	var err error
	if lq.Since, err = parseWindow(lq.Window, ui.cfg.Now()); err != nil {
		return lq, err
	}
	if names := splitList(lq.Hosts); len(names) > 0 {
		hosts, err := ui.cfg.Store.Hosts(r.Context())
		if err != nil {
			return lq, err
		}
		lq.HostIDs, lq.Unknown = ui.resolveHosts(hosts, names)
		if len(lq.HostIDs) == 0 {
			lq.HostIDs = []string{noHost} // unknown hosts only: match nothing
		}
	}
	return lq, nil
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

func (ui *UI) handleMatrix(w http.ResponseWriter, r *http.Request) {
	lq, err := ui.parseLayerQuery(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	sc, err := ui.scores(r, lq)
	if err != nil {
		ui.fail(w, r, err)
		return
	}
	v := matrixView{Q: lq, Windows: windows, Unknown: strings.Join(lq.Unknown, ", ")}
	for _, s := range sc {
		v.Max = max(v.Max, s.Score)
	}
	v.Label = "enabled rules"
	if lq.Layer == "detections" {
		v.Label = "detections"
	}
	scored := map[string]bool{}
	tip := func(t *attack.Technique, s attack.LayerScore) string {
		tip := t.ID + " " + t.Name
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
	for _, mt := range ui.matrix.Tactics {
		tv := tacticView{ID: mt.Tactic.ID, Name: mt.Tactic.Name, Short: mt.Tactic.ShortName}
		for _, te := range mt.Techniques {
			s := sc[te.T.ID]
			c := cellView{ID: te.T.ID, Name: te.T.Name, Score: s.Score, Heat: heat(s.Score, v.Max), Tip: tip(te.T, s)}
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
				c.Subs = append(c.Subs, cellView{ID: st.ID, Name: st.Name, Score: ss.Score, Heat: heat(ss.Score, v.Max), Tip: tip(st, ss)})
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
	lq, err := ui.parseLayerQuery(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	sc, err := ui.scores(r, lq)
	if err != nil {
		ui.fail(w, r, err)
		return
	}
	var l *attack.Layer
	if lq.Layer == "coverage" {
		l = attack.NewLayer(ui.cfg.KB, "Quarry detection coverage",
			fmt.Sprintf("Enabled rules per technique (%d rules)", len(ui.cfg.Rules)), "enabled rules", sc)
	} else {
		desc := "Fleet detections per technique"
		if !lq.Since.IsZero() {
			desc += " since " + lq.Since.UTC().Format(time.RFC3339)
		}
		if lq.Hosts != "" {
			desc += " on " + lq.Hosts
		}
		l = attack.NewLayer(ui.cfg.KB, "Quarry fleet detections", desc, "detections", sc)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="quarry-%s-layer.json"`, lq.Layer))
	if err := l.Write(w); err != nil {
		ui.cfg.OnError(r, err)
	}
}
