package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/tables/activity"
	"github.com/quarry-sec/quarry/telemetry"
)

// incFilterForm is the incidents filter as the form holds it.
type incFilterForm struct {
	Host, Since, Until, MinScore string
	// Time and Attack are as on the detections page (detFilterForm).
	Time, Attack string
	Page         int
}

func (f incFilterForm) query(page int) string {
	return listQuery(map[string]string{"host": f.Host, "since": f.Since, "until": f.Until, "min_score": f.MinScore,
		"time": f.Time, "attack": f.Attack}, page)
}

type incidentsView struct {
	F       incFilterForm
	Windows any
	HasV19  bool
	Rows    []store.Incident
	pager
	Error string
}

// noHost is a host ID no host has (PostgreSQL refuses NUL in text): a
// filter on it matches nothing.
const noHost = "-no-such-host-"

func (ui *UI) handleIncidents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := incFilterForm{Host: q.Get("host"), Since: q.Get("since"), Until: q.Get("until"), MinScore: q.Get("min_score"),
		Time: q.Get("time"), Attack: q.Get("attack")}
	f.Page, _ = strconv.Atoi(q.Get("page"))
	f.Page = max(f.Page, 1)
	v := incidentsView{F: f, Windows: windows, HasV19: ui.matrixV19 != nil}
	inf := store.IncidentFilter{By: timeField(f.Time), Limit: pageSize, Offset: (f.Page - 1) * pageSize}
	var errs []string
	var err error
	if inf.Since, inf.Until, inf.HostIDs, errs, err = ui.listScope(r.Context(), f.Since, f.Until, f.Host); err != nil {
		ui.fail(w, r, err)
		return
	}
	if f.MinScore != "" {
		if inf.MinScore, err = strconv.ParseFloat(strings.TrimSpace(f.MinScore), 64); err != nil || inf.MinScore < 0 {
			errs = append(errs, fmt.Sprintf("bad minimum score %q (a number, 0 or more)", f.MinScore))
			inf.MinScore = 0
		}
	}
	v.Error = strings.Join(errs, "; ")
	if v.Rows, v.Total, err = ui.cfg.Store.Incidents(r.Context(), inf); err != nil {
		ui.fail(w, r, err)
		return
	}
	v19 := ui.v19(f.Attack)
	for i := range v.Rows {
		v.Rows[i].Tactics = ui.cfg.KB.TacticsOf(v.Rows[i].Techniques, v.Rows[i].Tactics, v19)
	}
	v.paged(f.Page, inf.Offset, len(v.Rows), func(page int) string { return "/incidents?" + f.query(page) })
	ui.render(w, r, "incidents", "Incidents", v)
}

// chainTactic is one tactic of an incident's chain, in ATT&CK matrix order.
type chainTactic struct {
	Short, Name string
	Order       int // the tactic's column in the matrix, from 1
}

type incidentView struct {
	In *store.Incident
	// Chain are the incident's tactics in matrix order.
	Chain []chainTactic
	// Roots are the tops of the process graph.
	Roots []*procNode
	Nodes int
	// Hits are the incident's detections, newest last; Unreported the
	// hit IDs the host never sent as detections.
	Hits       []store.Detection
	Unreported []string
	// Around lists the host's detections over the incident's span.
	Around string
}

func (ui *UI) handleIncident(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		ui.notFound(w, r, "incident "+r.PathValue("id"))
		return
	}
	in, err := ui.cfg.Store.IncidentByID(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		ui.notFound(w, r, fmt.Sprintf("incident %d", id))
		return
	}
	if err != nil {
		ui.fail(w, r, err)
		return
	}
	hits, err := ui.cfg.Store.IncidentHits(r.Context(), id)
	if err != nil {
		ui.fail(w, r, err)
		return
	}
	nodes, err := ui.cfg.Store.IncidentTree(r.Context(), id)
	if err != nil {
		ui.fail(w, r, err)
		return
	}
	v := incidentView{In: in, Chain: ui.chain(in.Tactics), Nodes: len(nodes)}
	for _, h := range hits {
		if len(h.Detections) == 0 {
			v.Unreported = append(v.Unreported, h.HitID)
		}
		v.Hits = append(v.Hits, h.Detections...)
	}
	sort.SliceStable(v.Hits, func(i, j int) bool { return v.Hits[i].Time.Before(v.Hits[j].Time) })
	v.Roots = ui.incidentGraph(nodes, v.Hits)
	v.Around = "/detections?" + url.Values{"host": {in.HostID},
		"since": {in.FirstSeen.Add(-time.Minute).UTC().Format(time.RFC3339)},
		"until": {in.LastSeen.Add(time.Minute).UTC().Format(time.RFC3339)}}.Encode()
	title := in.RootPath
	if title == "" {
		title = in.IncidentID
	}
	ui.render(w, r, "incident", "Incident: "+title, v)
}

// chain orders tactic shortnames as the ATT&CK matrix does, each with its
// column.
func (ui *UI) chain(shorts []string) []chainTactic {
	want := map[string]bool{}
	for _, s := range shorts {
		want[s] = true
	}
	var out []chainTactic
	for i, t := range ui.cfg.KB.Tactics() {
		if want[t.ShortName] {
			out = append(out, chainTactic{Short: t.ShortName, Name: t.Name, Order: i + 1})
			delete(want, t.ShortName)
		}
	}
	var rest []string // tactics ATT&CK does not know
	for s := range want {
		rest = append(rest, s)
	}
	sort.Strings(rest)
	for _, s := range rest {
		out = append(out, chainTactic{Short: s, Name: s})
	}
	return out
}

// incidentGraph links an incident's tree nodes parent → child (by
// process key) and badges each with its techniques: a detection of the
// incident on the process (by event ID, else pid) gives the badge its
// severity and links it; otherwise the node's own severity colours it.
func (ui *UI) incidentGraph(nodes []store.IncidentNode, ds []store.Detection) []*procNode {
	byKey := map[string]*procNode{}
	order := make([]*procNode, 0, len(nodes))
	var parents []string // order's parent keys
	for i := range nodes {
		n := &nodes[i]
		p := &procNode{EID: n.EID, PID: n.PID, PPID: n.PPID, Time: n.Start, Path: n.Path, Cmdline: n.Cmdline,
			User: n.Username, Exited: n.Exited, ExitTime: n.Exit, IsHit: n.HitCount > 0, Tactics: ui.chain(n.Tactics)}
		if n.Start.IsZero() && n.EID == 0 && strings.HasPrefix(n.ProcessKey, "u:") {
			p.Synthetic = true // known only from its children's parent fields
		}
		for _, tech := range n.Techniques {
			var found *store.Detection
			for i := range ds {
				if d := &ds[i]; d.TechniqueID == tech && ((n.EID != 0 && d.EID == n.EID) || d.PID == n.PID) {
					found = d
					break
				}
			}
			p.Hits = append(p.Hits, ui.techniqueBadge(tech, n.Severity, found))
		}
		// IoC hits on the process: their own badge, the indicator.
		for _, d := range ds {
			if d.Kind == telemetry.KindIOC && ((n.EID != 0 && d.EID == n.EID) || (d.EID == 0 && d.PID == n.PID)) {
				p.Hits = appendIOC(p.Hits, d)
			}
		}
		sort.SliceStable(p.Hits, func(i, j int) bool { return severityRank(p.Hits[i].Severity) > severityRank(p.Hits[j].Severity) })
		p.Activity = ui.nodeActivity(n.Activity, ds)
		if _, dup := byKey[n.ProcessKey]; !dup {
			byKey[n.ProcessKey] = p
			order = append(order, p)
			parents = append(parents, n.ParentKey)
		}
	}
	var roots []*procNode
	for i, p := range order {
		parent := byKey[parents[i]]
		if parent == nil || parent == p {
			roots = append(roots, p)
			continue
		}
		parent.Children = append(parent.Children, p)
	}
	return roots
}

// nodeActivity reads a tree node's activity (process_tree's JSON) for the
// graph: kinds most events first, each item badged with its techniques,
// linked to the incident's detection on that event when there is one.
// Activity that does not parse is left out.
//
// IoC hits get their own badges (appendIOC).
func (ui *UI) nodeActivity(raw string, ds []store.Detection) []activityKind {
	p, err := activity.ParseProcessActivity(raw)
	if err != nil || len(p) == 0 {
		return nil
	}
	out := make([]activityKind, 0, len(p))
	for _, kind := range p.Kinds() {
		k := p[kind]
		ak := activityKind{Kind: kind, Count: k.Count, More: max(0, k.Count-len(k.Items))}
		seen := map[string]bool{}
		for _, it := range k.Items {
			item := activityItem{Time: time.Unix(it.Time, 0).UTC(), Summary: it.Summary, EID: it.EID}
			for _, tech := range it.Techniques {
				var found *store.Detection
				for i := range ds {
					if d := &ds[i]; d.TechniqueID == tech && it.EID != 0 && d.EID == it.EID {
						found = d
						break
					}
				}
				h := ui.techniqueBadge(tech, it.Severity, found)
				item.Hits = append(item.Hits, h)
				if !seen[tech] {
					seen[tech] = true
					ak.Badges = append(ak.Badges, h)
				}
			}
			for _, badge := range it.IOCs {
				d := store.Detection{Hit: telemetry.Hit{RuleTitle: badge, Severity: it.Severity}, Kind: telemetry.KindIOC}
				for _, x := range ds {
					if x.Kind == telemetry.KindIOC && x.RuleTitle == badge && it.EID != 0 && x.EID == it.EID {
						d = x
						break
					}
				}
				item.Hits = appendIOC(item.Hits, d)
				if !seen[badge] {
					seen[badge] = true
					ak.Badges = appendIOC(ak.Badges, d)
				}
			}
			ak.Items = append(ak.Items, item)
		}
		sort.SliceStable(ak.Badges, func(i, j int) bool {
			return severityRank(ak.Badges[i].Severity) > severityRank(ak.Badges[j].Severity)
		})
		out = append(out, ak)
	}
	return out
}

// treeActivity gives the processes of a detection's tree the activity the
// host reported for them in its incident trees: the incidents of the
// detection's host an hour either side of it, whose nodes are matched to
// the tree's processes by start event ID.
func (ui *UI) treeActivity(ctx context.Context, d *store.Detection, t *processTree) error {
	if t == nil || t.Root == nil {
		return nil
	}
	byEID := map[int64]*procNode{}
	var walk func(p *procNode)
	walk = func(p *procNode) {
		if p.EID != 0 {
			byEID[p.EID] = p
		}
		for _, c := range p.Children {
			walk(c)
		}
	}
	walk(t.Root)
	if len(byEID) == 0 {
		return nil
	}
	ins, _, err := ui.cfg.Store.Incidents(ctx, store.IncidentFilter{HostIDs: []string{d.HostID},
		Since: d.Time.Add(-time.Hour), Until: d.Time.Add(time.Hour), Limit: 10})
	if err != nil {
		return fmt.Errorf("activity of the process tree: %w", err)
	}
	for _, in := range ins {
		nodes, err := ui.cfg.Store.IncidentTree(ctx, in.ID)
		if err != nil {
			return fmt.Errorf("activity of the process tree: %w", err)
		}
		for i := range nodes {
			n := &nodes[i]
			if p := byEID[n.EID]; p != nil && n.EID != 0 && n.Activity != "" && p.Activity == nil {
				p.Activity = ui.nodeActivity(n.Activity, nil)
			}
		}
	}
	return nil
}

// techniqueBadge is the badge of technique tech on a node of an incident's
// tree: the technique with its ATT&CK name, coloured by severity; when the
// incident's detection d (nil: none) found it, linked to d and coloured
// by d's severity.
func (ui *UI) techniqueBadge(tech, severity string, d *store.Detection) store.Detection {
	b := store.Detection{Hit: telemetry.Hit{TechniqueID: tech, Severity: severity}}
	if d != nil {
		b.ID, b.Severity, b.RuleTitle = d.ID, d.Severity, d.RuleTitle
	}
	if t, _, ok := ui.cfg.KB.Resolve(tech); ok {
		b.TechniqueName = t.Name
	}
	return b
}

// appendIOC adds the badge of an IoC detection ("IOC <indicator>", linked
// to the detection when stored) unless hs has it.
func appendIOC(hs []store.Detection, d store.Detection) []store.Detection {
	for _, h := range hs {
		if h.Kind == telemetry.KindIOC && h.RuleTitle == d.RuleTitle {
			return hs
		}
	}
	d.Kind = telemetry.KindIOC
	return append(hs, d)
}
