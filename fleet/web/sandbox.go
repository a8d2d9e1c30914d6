package web

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/quarry-sec/quarry/fleet/server"
	"github.com/quarry-sec/quarry/fleet/store"
)

// sandboxFilterForm is the sandbox runs filter as the form holds it.
type sandboxFilterForm struct {
	Host, Since, Until, Verdict, Technique string
	Page                                   int
}

func (f sandboxFilterForm) query(page int) string {
	return listQuery(map[string]string{"host": f.Host, "since": f.Since, "until": f.Until, "verdict": f.Verdict,
		"technique": f.Technique}, page)
}

type sandboxView struct {
	F        sandboxFilterForm
	Windows  any
	Verdicts []string
	Rows     []store.SandboxRun
	pager
	Error string
}

// handleSandbox lists the sandbox runs the hosts reported, newest first.
func (ui *UI) handleSandbox(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := sandboxFilterForm{Host: q.Get("host"), Since: q.Get("since"), Until: q.Get("until"),
		Verdict: strings.ToLower(strings.TrimSpace(q.Get("verdict"))), Technique: strings.TrimSpace(q.Get("technique"))}
	f.Page, _ = strconv.Atoi(q.Get("page"))
	f.Page = max(f.Page, 1)
	v := sandboxView{F: f, Windows: windows, Verdicts: []string{"malicious", "suspicious", "clean"}}
	sf := store.SandboxRunFilter{Limit: pageSize, Offset: (f.Page - 1) * pageSize}
	var errs []string
	var err error
	if sf.Since, sf.Until, sf.HostIDs, errs, err = ui.listScope(r.Context(), f.Since, f.Until, f.Host); err != nil {
		ui.fail(w, r, err)
		return
	}
	switch f.Verdict {
	case "":
	case "malicious", "suspicious", "clean":
		sf.Verdicts = []string{f.Verdict}
	default:
		errs = append(errs, fmt.Sprintf("bad verdict %q (malicious, suspicious or clean)", f.Verdict))
	}
	if f.Technique != "" {
		sf.Technique = f.Technique
		if t, _, ok := ui.cfg.KB.Resolve(f.Technique); ok {
			sf.Technique = t.ID
		}
	}
	v.Error = strings.Join(errs, "; ")
	if v.Rows, v.Total, err = ui.cfg.Store.SandboxRuns(r.Context(), sf); err != nil {
		ui.fail(w, r, err)
		return
	}
	v.paged(f.Page, sf.Offset, len(v.Rows), func(page int) string { return "/sandbox?" + f.query(page) })
	ui.render(w, r, "sandbox", "Sandbox", v)
}

// runTechnique is a technique a run saw, placed in the matrix.
type runTechnique struct {
	ID, Name string
	Tactics  []chainTactic
	order    int
}

type sandboxRunView struct {
	Run *store.SandboxRun
	// Chain are the run's tactics and Techniques its techniques, both in
	// ATT&CK matrix order.
	Chain      []chainTactic
	Techniques []runTechnique
	// Roots are the tops of the process tree.
	Roots []*procNode
	Nodes int
}

// handleSandboxRun shows one run: verdict, score, techniques and tactics
// in matrix order, the process tree with technique badges (the incident
// graph's), files, network destinations and rules fired.
func (ui *UI) handleSandboxRun(w http.ResponseWriter, r *http.Request) {
	run, err := server.LoadSandboxRun(r.Context(), ui.cfg.Store, r.PathValue("host"), r.PathValue("run"))
	if errors.Is(err, store.ErrNotFound) {
		ui.notFound(w, r, "sandbox run "+r.PathValue("run"))
		return
	}
	if err != nil {
		ui.fail(w, r, err)
		return
	}
	v := sandboxRunView{Run: run, Chain: ui.chain(ui.tacticShorts(run.Tactics)), Nodes: len(run.Tree)}
	for _, id := range run.Techniques {
		rt := runTechnique{ID: id, order: 1 << 30}
		if t, _, ok := ui.cfg.KB.Resolve(id); ok {
			rt.Name = t.Name
			rt.Tactics = ui.chain(t.Tactics)
			for _, c := range rt.Tactics {
				if c.Order > 0 && c.Order < rt.order {
					rt.order = c.Order
				}
			}
		}
		v.Techniques = append(v.Techniques, rt)
	}
	sort.SliceStable(v.Techniques, func(i, j int) bool {
		if v.Techniques[i].order != v.Techniques[j].order {
			return v.Techniques[i].order < v.Techniques[j].order
		}
		return v.Techniques[i].ID < v.Techniques[j].ID
	})
	// The host sends no tactics per process: the graph's tactic numbers
	// come from each process's techniques.
	nodes := append([]store.IncidentNode(nil), run.Tree...)
	for i := range nodes {
		if len(nodes[i].Tactics) > 0 {
			continue
		}
		seen := map[string]bool{}
		for _, id := range nodes[i].Techniques {
			if t, _, ok := ui.cfg.KB.Resolve(id); ok {
				for _, sn := range t.Tactics {
					if !seen[sn] {
						seen[sn] = true
						nodes[i].Tactics = append(nodes[i].Tactics, sn)
					}
				}
			}
		}
	}
	v.Roots = ui.incidentGraph(nodes, nil)
	title := run.Sample
	if title == "" {
		title = run.ID
	}
	ui.render(w, r, "sandboxrun", "Sandbox run: "+title, v)
}

// tacticShorts maps tactic IDs (TA0002, as sandbox_runs reports them) or
// shortnames to shortnames.
func (ui *UI) tacticShorts(ids []string) []string {
	var out []string
	for _, id := range ids {
		if ts := ui.cfg.KB.TacticsByID(id); len(ts) > 0 {
			out = append(out, ts[0].ShortName)
			continue
		}
		out = append(out, id)
	}
	return out
}
