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
	"sync"
	"time"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/telemetry"
)

// pageSize is the rows of a detections or hosts page.
const pageSize = 50

type keyCount struct {
	Key, Name, Link string
	N               int64
	Pct             int // of the largest, for the bar
}

type overviewView struct {
	Hosts, Online, Offline int
	Severity               []keyCount
	Total24h               int64
	TopTechniques          []keyCount
	TopHosts               []keyCount
	TopTactics             []keyCount
	Recent                 []store.Detection
}

func bars(cs []keyCount) []keyCount {
	var top int64
	for _, c := range cs {
		top = max(top, c.N)
	}
	for i := range cs {
		if top > 0 {
			cs[i].Pct = int(cs[i].N*20/top) * 5
		}
	}
	return cs
}

func (ui *UI) handleOverview(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := ui.cfg.Now()
	var v overviewView
	day := store.DetectionFilter{Since: now.Add(-24 * time.Hour)}
	// The aggregates are independent: run them side by side on the
	// store's read connections.
	var (
		sev                map[string]int64
		techs, hosts, tacs []store.Count
		errs               [6]error
		wg                 sync.WaitGroup
	)
	run := func(i int, f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f()
		}()
	}
	run(0, func() (err error) {
		v.Hosts, v.Online, err = ui.wq.CountHosts(ctx, now.Add(-ui.cfg.OnlineWindow))
		return err
	})
	run(1, func() (err error) { sev, err = ui.wq.CountBySeverity(ctx, day); return err })
	run(2, func() (err error) {
		techs, err = ui.cfg.Store.CountDetections(ctx, day, store.KeyTechnique)
		return err
	})
	run(3, func() (err error) { hosts, err = ui.cfg.Store.CountDetections(ctx, day, store.KeyHost); return err })
	run(4, func() (err error) { tacs, err = ui.cfg.Store.CountDetections(ctx, day, store.KeyTactic); return err })
	run(5, func() (err error) {
		v.Recent, _, err = ui.cfg.Store.Detections(ctx, store.DetectionFilter{Limit: 12})
		return err
	})
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		ui.fail(w, r, err)
		return
	}
	v.Offline = v.Hosts - v.Online
	for i := len(severities) - 1; i >= 0; i-- {
		s := severities[i]
		v.Severity = append(v.Severity, keyCount{Key: s, N: sev[s], Link: "/detections?" + url.Values{"severity": {s}, "since": {"24h"}}.Encode()})
		v.Total24h += sev[s]
	}
	v.Severity = bars(v.Severity)
	for _, c := range techs[:min(10, len(techs))] {
		name := ""
		link := "/techniques/" + url.PathEscape(c.Keys[0])
		if t, ok := ui.cfg.KB.Technique(c.Keys[0]); ok {
			name = t.Name
		} else if c.Keys[0] == telemetry.Untagged {
			// Counted apart: rules naming no technique.
			name, link = "rules naming no ATT&CK technique", "/detections?technique="+telemetry.Untagged
		}
		v.TopTechniques = append(v.TopTechniques, keyCount{Key: c.Keys[0], Name: name, N: c.N, Link: link})
	}
	v.TopTechniques = bars(v.TopTechniques)
	for _, c := range hosts[:min(10, len(hosts))] {
		name := c.Keys[0]
		if h, err := ui.wq.HostByID(ctx, c.Keys[0]); err == nil {
			name = h.HostIdentifier
		}
		v.TopHosts = append(v.TopHosts, keyCount{Key: c.Keys[0], Name: name, N: c.N, Link: "/hosts/" + url.PathEscape(c.Keys[0])})
	}
	v.TopHosts = bars(v.TopHosts)
	perTactic := map[string]int64{}
	for _, c := range tacs {
		for _, t := range strings.Split(c.Keys[0], ",") {
			if t = strings.TrimSpace(t); t != "" {
				perTactic[t] += c.N
			}
		}
	}
	for _, t := range ui.cfg.KB.Tactics() {
		if n := perTactic[t.ShortName]; n > 0 {
			v.TopTactics = append(v.TopTactics, keyCount{Key: t.ShortName, Name: t.Name, N: n,
				Link: "/detections?" + url.Values{"tactic": {t.ShortName}, "since": {"24h"}}.Encode()})
		}
	}
	v.TopTactics = bars(v.TopTactics)
	ui.render(w, r, "overview", "Overview", v)
}

// detFilterForm is the detections filter as the form holds it.
type detFilterForm struct {
	Severity, Tactic, Technique, Host, Since, Until string
	// Kind is ioa (rules' hits), ioc (intel indicators') or "" (both).
	Kind string
	// Time is which time since and until bound: event (default) or
	// detected; Attack the ATT&CK version shown: 18.1 (default) or 19.
	Time, Attack string
	Page         int
}

func (f detFilterForm) query(page int) string {
	return listQuery(map[string]string{"severity": f.Severity, "tactic": f.Tactic, "technique": f.Technique,
		"host": f.Host, "since": f.Since, "until": f.Until, "time": f.Time, "attack": f.Attack, "kind": f.Kind}, page)
}

// timeField reads a list page's time switch: "detected" bounds the
// detection time, anything else the event's.
func timeField(v string) store.TimeField {
	if v == "detected" {
		return store.TimeDetected
	}
	return store.TimeEvent
}

// v19 reports whether a page shows ATT&CK v19 (attack=19, with the v19
// overlay loaded), as the matrix does; v18.1 otherwise.
func (ui *UI) v19(attackParam string) bool {
	is19, err := attack.ParseVersion(attackParam)
	return err == nil && is19 && ui.matrixV19 != nil
}

// inVersion shows detections in one ATT&CK version: technique ID, name and
// tactics placed there (see attack.KB.Place); untagged ones stay as they
// are.
func (ui *UI) inVersion(ds []store.Detection, v19 bool) {
	for i := range ds {
		d := &ds[i]
		if d.TechniqueID == telemetry.Untagged {
			continue
		}
		p := ui.cfg.KB.Place(d.TechniqueID, splitList(d.Tactic), v19)
		if p.ID != "" {
			d.TechniqueID, d.TechniqueName = p.ID, p.Name
		}
		d.Tactic = strings.Join(p.Tactics, ",")
	}
}

// storedTactics are the tactic shortnames to filter stored detections
// (v18.1 tactics) by: each one asked for and its v18.1 counterpart.
func (ui *UI) storedTactics(shorts []string) []string {
	out := shorts
	for _, s := range shorts {
		if m := ui.cfg.KB.TacticIn(s, false); m != "" && m != s {
			out = append(out, m)
		}
	}
	return out
}

// techniqueIDs are the technique IDs to filter stored detections (as the
// rules wrote them) by: each one asked for and its ID in either version.
func (ui *UI) techniqueIDs(ids []string) []string {
	out := ids
	for _, id := range ids {
		for _, v19 := range []bool{false, true} {
			if o := ui.cfg.KB.IDInVersion(id, v19); o != "" && !strings.EqualFold(o, id) {
				out = append(out, o)
			}
		}
	}
	return out
}

// listScope reads a list page's time window (since; until, optional) and
// host names. What an analyst mistyped comes back in problems, shown on
// the page; err is a failure of the store.
func (ui *UI) listScope(ctx context.Context, since, until, hosts string) (from, to time.Time, hostIDs, problems []string, err error) {
	now := ui.cfg.Now()
	if from, err = parseWindow(since, now); err != nil {
		problems = append(problems, err.Error())
	}
	if until != "" {
		if to, err = parseWindow(until, now); err != nil {
			problems = append(problems, err.Error())
		}
	}
	hostIDs, unknown, err := ui.hostIDs(ctx, splitList(hosts))
	if err != nil {
		return from, to, nil, problems, err
	}
	if len(unknown) > 0 {
		problems = append(problems, "unknown host: "+strings.Join(unknown, ", "))
	}
	return from, to, hostIDs, problems, nil
}

// listQuery is the query string of a list page: its filters that are set,
// and the page when past the first.
func listQuery(filters map[string]string, page int) string {
	v := url.Values{}
	for k, val := range filters {
		if val != "" {
			v.Set(k, val)
		}
	}
	if page > 1 {
		v.Set("page", strconv.Itoa(page))
	}
	return v.Encode()
}

type detectionsView struct {
	F          detFilterForm
	Windows    any
	Severities []string
	Tactics    []*attack.Tactic
	HasV19     bool
	// Untagged counts the matching detections of rules naming no ATT&CK
	// technique.
	Untagged int64
	Rows     []store.Detection
	pager
	Pages int
	Error string
}

// pager is where a list page stands: rows From to To of Total, and links
// to the pages before and after ("" at either end).
type pager struct {
	Total      int
	From, To   int
	Prev, Next string
}

// paged sets p for a page (from 1) of rows starting at offset; link makes a
// page's URL.
func (p *pager) paged(page, offset, rows int, link func(page int) string) {
	if rows > 0 {
		p.From, p.To = offset+1, offset+rows
	}
	if page > 1 {
		p.Prev = link(page - 1)
	}
	if offset+rows < p.Total {
		p.Next = link(page + 1)
	}
}

func (ui *UI) handleDetections(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := detFilterForm{Severity: q.Get("severity"), Tactic: q.Get("tactic"), Technique: q.Get("technique"),
		Host: q.Get("host"), Since: q.Get("since"), Until: q.Get("until"), Time: q.Get("time"), Attack: q.Get("attack"),
		Kind: q.Get("kind")}
	if f.Kind != telemetry.KindIOA && f.Kind != telemetry.KindIOC {
		f.Kind = ""
	}
	f.Page, _ = strconv.Atoi(q.Get("page"))
	f.Page = max(f.Page, 1)
	v19 := ui.v19(f.Attack)
	v := detectionsView{F: f, Windows: windows, Severities: severities, Tactics: ui.cfg.KB.Tactics(), HasV19: ui.matrixV19 != nil}
	if v19 {
		v.Tactics = ui.cfg.KB.TacticsV19()
	}
	df := store.DetectionFilter{Severities: splitList(f.Severity), Tactics: ui.storedTactics(splitList(f.Tactic)),
		Techniques: ui.techniqueIDs(splitList(f.Technique)), By: timeField(f.Time), Kind: f.Kind, Limit: pageSize,
		Offset: (f.Page - 1) * pageSize}
	var errs []string
	var err error
	if df.Since, df.Until, df.HostIDs, errs, err = ui.listScope(r.Context(), f.Since, f.Until, f.Host); err != nil {
		ui.fail(w, r, err)
		return
	}
	v.Error = strings.Join(errs, "; ")
	if v.Rows, v.Total, err = ui.cfg.Store.Detections(r.Context(), df); err != nil {
		ui.fail(w, r, err)
		return
	}
	ui.inVersion(v.Rows, v19)
	all := df
	all.Limit, all.Offset = 0, 0
	counts, err := ui.cfg.Store.CountDetections(r.Context(), all, store.KeyTechnique)
	if err != nil {
		ui.fail(w, r, err)
		return
	}
	for _, c := range counts {
		if c.Keys[0] == telemetry.Untagged {
			v.Untagged = c.N
		}
	}
	v.Pages = (v.Total + pageSize - 1) / pageSize
	v.paged(f.Page, df.Offset, len(v.Rows), func(page int) string { return "/detections?" + f.query(page) })
	ui.render(w, r, "detections", "Detections", v)
}

type detectionView struct {
	D       *store.Detection
	Tech    *attack.Technique
	Tree    *processTree
	Raw     string
	RawRow  string
	Related []store.Detection
	Hunt    string
	Around  string // the host's detections an hour either side
}

func (ui *UI) handleDetection(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		ui.notFound(w, r, "detection "+r.PathValue("id"))
		return
	}
	d, err := ui.wq.DetectionByID(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		ui.notFound(w, r, fmt.Sprintf("detection %d", id))
		return
	}
	if err != nil {
		ui.fail(w, r, err)
		return
	}
	v := detectionView{D: d}
	if t, _, ok := ui.cfg.KB.Resolve(d.TechniqueID); ok {
		v.Tech = t
	}
	v.Raw = prettyJSON(d)
	tree, err := ui.processTree(r.Context(), d)
	if err != nil {
		ui.fail(w, r, err)
		return
	}
	v.Tree = tree
	if err := ui.treeActivity(r.Context(), d, tree); err != nil {
		ui.fail(w, r, err)
		return
	}
	if tree != nil && tree.Hit != nil && tree.Hit.Raw != nil {
		v.RawRow = prettyJSON(tree.Hit.Raw)
	}
	// The same hit's other techniques.
	related, _, err := ui.cfg.Store.Detections(r.Context(), store.DetectionFilter{HostIDs: []string{d.HostID},
		Since: d.Time, Until: d.Time.Add(time.Millisecond), Limit: 50})
	if err != nil {
		ui.fail(w, r, err)
		return
	}
	for _, o := range related {
		if o.HitID == d.HitID && o.ID != d.ID {
			v.Related = append(v.Related, o)
		}
	}
	v.Hunt = "/hunt?" + url.Values{"sql": {processHuntSQL(d)}, "hosts": {d.HostIdentifier}}.Encode()
	v.Around = "/detections?" + url.Values{"host": {d.HostID}, "since": {d.Time.Add(-time.Hour).UTC().Format(time.RFC3339)},
		"until": {d.Time.Add(time.Hour).UTC().Format(time.RFC3339)}}.Encode()
	ui.render(w, r, "detection", d.RuleTitle, v)
}

type hostRow struct {
	H          store.Host
	Online     bool
	Detections int64
}

type hostsView struct {
	Rows                   []hostRow
	Total, Online, Shown   int
	Filter                 string
	Prev, Next             string
	From, To               int
	PlatformCounts         []keyCount
	DetectionsWindowLegend string
}

func (ui *UI) handleHosts(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	hosts, err := ui.cfg.Store.Hosts(ctx)
	if err != nil {
		ui.fail(w, r, err)
		return
	}
	now := ui.cfg.Now()
	q := strings.ToLower(strings.TrimSpace(r.URL.Query().Get("q")))
	pg, _ := strconv.Atoi(r.URL.Query().Get("page"))
	pg = max(pg, 1)
	v := hostsView{Filter: r.URL.Query().Get("q"), Total: len(hosts)}
	platforms := map[string]int64{}
	var match []store.Host
	for _, h := range hosts {
		online := now.Sub(h.LastSeen) <= ui.cfg.OnlineWindow
		if online {
			v.Online++
		}
		platforms[h.Family]++
		if q == "" || strings.Contains(strings.ToLower(h.HostIdentifier+" "+h.Hostname+" "+h.Platform+" "+h.OSVersion), q) {
			match = append(match, h)
		}
	}
	for k, n := range platforms {
		if k == "" {
			k = "unknown"
		}
		v.PlatformCounts = append(v.PlatformCounts, keyCount{Key: k, N: n})
	}
	sort.Slice(v.PlatformCounts, func(i, j int) bool { return v.PlatformCounts[i].N > v.PlatformCounts[j].N })
	v.Shown = len(match)
	from := min((pg-1)*pageSize, len(match))
	to := min(from+pageSize, len(match))
	counts := map[string]int64{}
	if to > from {
		var ids []string
		for _, h := range match[from:to] {
			ids = append(ids, h.ID)
		}
		cs, err := ui.cfg.Store.CountDetections(ctx, store.DetectionFilter{HostIDs: ids, Since: now.Add(-24 * time.Hour)}, store.KeyHost)
		if err != nil {
			ui.fail(w, r, err)
			return
		}
		for _, c := range cs {
			counts[c.Keys[0]] = c.N
		}
	}
	for _, h := range match[from:to] {
		v.Rows = append(v.Rows, hostRow{H: h, Online: now.Sub(h.LastSeen) <= ui.cfg.OnlineWindow, Detections: counts[h.ID]})
	}
	if len(v.Rows) > 0 {
		v.From, v.To = from+1, to
	}
	link := func(p int) string {
		val := url.Values{"page": {strconv.Itoa(p)}}
		if v.Filter != "" {
			val.Set("q", v.Filter)
		}
		return "/hosts?" + val.Encode()
	}
	if pg > 1 {
		v.Prev = link(pg - 1)
	}
	if to < len(match) {
		v.Next = link(pg + 1)
	}
	ui.render(w, r, "hosts", "Hosts", v)
}

type hostView struct {
	H          *store.Host
	Online     bool
	Recent     []store.Detection
	Total      int
	Techniques []keyCount
	Hunt       string
}

func (ui *UI) handleHost(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	h, err := ui.wq.HostByID(ctx, r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		ui.notFound(w, r, "host "+r.PathValue("id"))
		return
	}
	if err != nil {
		ui.fail(w, r, err)
		return
	}
	v := hostView{H: h, Online: ui.cfg.Now().Sub(h.LastSeen) <= ui.cfg.OnlineWindow}
	f := store.DetectionFilter{HostIDs: []string{h.ID}, Limit: 25}
	if v.Recent, v.Total, err = ui.cfg.Store.Detections(ctx, f); err != nil {
		ui.fail(w, r, err)
		return
	}
	cs, err := ui.cfg.Store.CountDetections(ctx, store.DetectionFilter{HostIDs: []string{h.ID}}, store.KeyTechnique)
	if err != nil {
		ui.fail(w, r, err)
		return
	}
	for _, c := range cs[:min(len(cs), 15)] {
		name := ""
		if t, ok := ui.cfg.KB.Technique(c.Keys[0]); ok {
			name = t.Name
		}
		v.Techniques = append(v.Techniques, keyCount{Key: c.Keys[0], Name: name, N: c.N,
			Link: "/detections?" + url.Values{"technique": {c.Keys[0]}, "host": {h.HostIdentifier}}.Encode()})
	}
	v.Techniques = bars(v.Techniques)
	v.Hunt = "/hunt?" + url.Values{"hosts": {h.HostIdentifier},
		"sql": {"SELECT time, pid, path, cmdline, parent_path, username\nFROM quarry_process_events\nWHERE time >= CAST(strftime('%s', 'now') AS INTEGER) - 3600\nORDER BY time DESC LIMIT 200;"}}.Encode()
	ui.render(w, r, "host", h.HostIdentifier, v)
}
