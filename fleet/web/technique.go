package web

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/fleet/store"
)

type mitigationView struct {
	ID, Name, URL, How string
}

type techniqueView struct {
	T            *attack.Technique
	Redirected   string
	Parent       *attack.Technique
	Subs         []*attack.Technique
	Tactics      []*attack.Tactic
	Mitigations  []mitigationView
	Rules        []string
	Recent       []store.Detection
	Total        int
	Hunt         string
	DetectionsQ  string
	SubRuleCount map[string]int
}

func (ui *UI) handleTechnique(w http.ResponseWriter, r *http.Request) {
	kb := ui.cfg.KB
	t, from, ok := kb.Resolve(r.PathValue("id"))
	if !ok {
		ui.notFound(w, r, "technique "+r.PathValue("id"))
		return
	}
	v := techniqueView{T: t, Redirected: from, Rules: ui.cover[t.ID], SubRuleCount: map[string]int{}}
	if t.ParentID != "" {
		v.Parent, _ = kb.Technique(t.ParentID)
	}
	for i := range kb.Techniques() {
		st := &kb.Techniques()[i]
		if st.ParentID == t.ID && st.Live() && st.IsSubtechnique {
			v.Subs = append(v.Subs, st)
			v.SubRuleCount[st.ID] = len(ui.cover[st.ID])
		}
	}
	sort.Slice(v.Subs, func(i, j int) bool { return v.Subs[i].ID < v.Subs[j].ID })
	for _, short := range t.Tactics {
		if tac, ok := kb.Tactic(short); ok {
			v.Tactics = append(v.Tactics, tac)
		}
	}
	for _, rel := range kb.MitigationsOf(t.ID) {
		m := mitigationView{ID: rel.SourceID, How: stripCitations(rel.Description)}
		if mm, ok := kb.Mitigation(rel.SourceID); ok {
			if !mm.Live() {
				continue
			}
			m.Name, m.URL = mm.Name, mm.URL
		}
		v.Mitigations = append(v.Mitigations, m)
	}
	sort.Slice(v.Mitigations, func(i, j int) bool { return v.Mitigations[i].ID < v.Mitigations[j].ID })
	var err error
	if v.Recent, v.Total, err = ui.cfg.Store.Detections(r.Context(), store.DetectionFilter{Techniques: []string{t.ID}, Limit: 15}); err != nil {
		ui.fail(w, r, err)
		return
	}
	v.Hunt = "/hunt?" + url.Values{"sql": {techniqueHuntSQL(t)}}.Encode()
	v.DetectionsQ = "/detections?" + url.Values{"technique": {t.ID}}.Encode()
	ui.render(w, r, "technique", t.ID+" "+t.Name, v)
}

// techniqueHuntSQL is the hunt a technique page offers: processes of the
// last day that a rule tagged with the technique, or that raised a hit of
// it, with the rules that fired. It runs on Quarry's agent and inside
// osquery with the Quarry extension (quarry_process_events).
func techniqueHuntSQL(t *attack.Technique) string {
	id := strings.ReplaceAll(t.ID, "'", "")
	return fmt.Sprintf(`-- Hunt %s %s: processes of the last 24 h that rules tagged with it or alerted on
SELECT e.time, e.pid, e.path, e.cmdline, e.parent_path, e.username, e.techniques,
  (SELECT group_concat(h.rule_title, '; ') FROM ioa_hits h WHERE h.eid = e.eid) AS rules
FROM quarry_process_events e
WHERE e.time >= CAST(strftime('%%s', 'now') AS INTEGER) - 86400
  AND (e.techniques LIKE '%%%s%%'
       OR e.eid IN (SELECT eid FROM ioa_hits WHERE technique_id = '%s' OR technique_id LIKE '%s.%%'))
ORDER BY e.time DESC
LIMIT 500;`, t.ID, strings.ReplaceAll(t.Name, "\n", " "), id, id, id)
}

// processHuntSQL is the hunt a detection page offers: what the process
// and its parent did around the hit, on its host.
func processHuntSQL(d *store.Detection) string {
	return fmt.Sprintf(`-- Processes around detection %d (%s): the hit's pid, its parent and children, an hour either side
SELECT e.time, e.pid, e.parent, e.syscall, e.path, e.cmdline, e.username
FROM quarry_process_events e
WHERE e.time BETWEEN %d AND %d
  AND (e.pid = %d OR e.parent = %d)
ORDER BY e.time;`, d.ID, strings.ReplaceAll(d.RuleTitle, "\n", " "), d.Time.Unix()-3600, d.Time.Unix()+3600, d.PID, d.PID)
}
