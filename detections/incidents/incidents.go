// Package incidents groups detection hits into incidents along process
// ancestry, scores them, and keeps them in the event store (the incidents
// and incident_hits tables), and builds process trees (process_tree,
// quarry tree).
//
// # Grouping
//
// Each hit belongs to a process (the process of its event). Its anchors are
// that process and its ancestors, walking up while an ancestor started no
// earlier than Window before the hit and is not a boundary process (a
// session or service host such as systemd, sshd's listener is not one,
// explorer.exe, services.exe: see DefaultBoundaries) nor a phantom (a parent
// the store has no start of). Two hits of one host are linked when they are
// at most Window apart and share an anchor; an incident is a connected set
// of linked hits. So a process and its descendants (mshta → powershell), and
// siblings spawned by one recently started process (a script's decode, shell
// and crontab), are one incident, while two commands run an hour apart from
// a long-lived login shell are not.
//
// A hit that names no process (Security 4697/4698, System 7045, a share
// access, a log clear) or whose process is itself a boundary (services.exe
// writing a service key, the BITS svchost staging a download) has no
// ancestry to join by: its incident is the one of the nearest hit of the
// host, in time, that has a process of its own, when that hit is at most
// AttachWindow away (default DefaultAttachWindow); else it joins such hits
// near it, or stands alone.
//
// Linking is a relation between two hits that depends only on them and the
// stored process events, so the incidents are the same whatever order hits
// arrive in: the same input always gives the same incidents. An incident's
// id is a name-based (v5) UUID of its host, its root process's identity and
// its first hit's id; its root is the topmost process among its hits'
// anchors. When a later hit joins an incident the id stays; when a hit
// links two incidents the merged one keeps the id of the earlier.
//
// # Score
//
// Each hit weighs severity × confidence, with severity informational 1,
// low 2, medium 4, high 7, critical 10 and confidence low 0.5, medium 0.75,
// high 1 (unknown: 0.75). An incident scores
//
//	score = maxWeight × (1 + 0.5 × (tactics − 1)) + 0.5 × ln(hits)
//
// where tactics is the number of distinct ATT&CK tactics of its hits (at
// least 1): each further tactic adds half of the strongest hit's weight,
// while forty hits of one tactic add only 0.5 × ln 40 ≈ 1.8. Three medium
// hits across three tactics (4 × 0.75 × 2 + 0.55 = 6.55) rank above forty
// medium hits of one tactic (3 + 1.84 = 4.84). The incident's severity is
// its strongest hit's.
package incidents

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

// DefaultWindow is how far apart two hits of one incident may be, and how
// recently an ancestor must have started to join hits under it.
const DefaultWindow = 30 * time.Minute

// DefaultAttachWindow is how near in time a hit without ancestry of its own
// must be to a hit with one to join its incident.
const DefaultAttachWindow = 2 * time.Minute

// DefaultBoundaries are executable names (lower case) of processes that host
// whole sessions or services: hits are never joined through them.
var DefaultBoundaries = []string{
	// Linux
	"init", "systemd", "kthreadd", "containerd-shim", "containerd-shim-runc-v2", "runc", "dockerd",
	"containerd", "cron", "crond", "atd", "login", "agetty", "gdm", "gdm-session-worker", "gnome-session",
	"gnome-shell", "xfce4-session", "tmux: server", "screen",
	// Windows
	"system", "smss.exe", "csrss.exe", "wininit.exe", "winlogon.exe", "services.exe", "svchost.exe",
	"explorer.exe", "userinit.exe", "lsass.exe", "taskhostw.exe", "sihost.exe", "runtimebroker.exe",
}

// Options tune grouping.
type Options struct {
	// Window bounds the time between linked hits and how recently an
	// ancestor must have started to join hits (default DefaultWindow).
	Window time.Duration
	// Boundaries replaces DefaultBoundaries when not nil.
	Boundaries []string
	// MaxDepth bounds how far up ancestry is walked (default 32).
	MaxDepth int
	// AttachWindow bounds how far in time a hit without ancestry (no
	// process, or a boundary process) joins the incident of the nearest
	// hit with one (default DefaultAttachWindow; negative: never).
	AttachWindow time.Duration
}

func (o Options) withDefaults() Options {
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.Boundaries == nil {
		o.Boundaries = DefaultBoundaries
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = 32
	}
	if o.AttachWindow == 0 {
		o.AttachWindow = DefaultAttachWindow
	}
	if o.AttachWindow > o.Window {
		o.AttachWindow = o.Window
	}
	return o
}

// Hit is one detection with all its techniques: the technique rows of one
// hit_id joined. The embedded row is the hit's first (its rule, event and
// process); Techniques and Tactics are all its rows', to be used rather
// than the row's TechniqueID and Tactic.
type Hit struct {
	telemetry.Hit
	Techniques []string // sorted, distinct
	Tactics    []string // distinct, matrix order
}

// hitJoin joins technique rows into Hits, one per hit_id, in the order
// their first rows came.
type hitJoin struct {
	byID  map[string]*Hit
	order []string
}

// add joins row r to its hit, and reports whether r was the hit's first.
func (j *hitJoin) add(r *telemetry.Hit) (first bool) {
	if j.byID == nil {
		j.byID = map[string]*Hit{}
	}
	h, ok := j.byID[r.HitID]
	if !ok {
		h = &Hit{Hit: *r}
		j.byID[r.HitID] = h
		j.order = append(j.order, r.HitID)
	}
	if r.TechniqueID != "" {
		h.Techniques = appendUnique(h.Techniques, r.TechniqueID)
	}
	for _, t := range strings.Split(r.Tactic, ",") {
		if t = strings.TrimSpace(t); t != "" {
			h.Tactics = appendUnique(h.Tactics, V18Tactic(t))
		}
	}
	return !ok
}

// hits returns the joined hits, techniques sorted and tactics in matrix
// order.
func (j *hitJoin) hits() []Hit {
	out := make([]Hit, 0, len(j.order))
	for _, id := range j.order {
		h := j.byID[id]
		sort.Strings(h.Techniques)
		SortTactics(h.Tactics)
		out = append(out, *h)
	}
	return out
}

// Weight is the hit's severity × confidence (see the package doc).
func (h *Hit) Weight() float64 {
	return SeverityWeight(h.Severity) * ConfidenceWeight(h.Confidence)
}

// SeverityWeight weighs a severity name.
func SeverityWeight(s string) float64 {
	switch s {
	case "informational":
		return 1
	case "low":
		return 2
	case "medium":
		return 4
	case "high":
		return 7
	case "critical":
		return 10
	}
	return 1
}

// ConfidenceWeight weighs a confidence name.
func ConfidenceWeight(c string) float64 {
	switch c {
	case "low":
		return 0.5
	case "high":
		return 1
	}
	return 0.75
}

// tacticOrder is ATT&CK Enterprise's matrix order, with v19's stealth and
// defense-impairment beside defense-evasion.
var tacticOrder = map[string]int{
	"reconnaissance": 1, "resource-development": 2, "initial-access": 3, "execution": 4, "persistence": 5,
	"privilege-escalation": 6, "defense-evasion": 7, "stealth": 8, "defense-impairment": 9,
	"credential-access": 10, "discovery": 11, "lateral-movement": 12, "collection": 13,
	"command-and-control": 14, "exfiltration": 15, "impact": 16,
}

// V18Tactic is a tactic shortname in ATT&CK v18.1's vocabulary, the one
// incidents are grouped, scored and stored in: v19's stealth (TA0005
// renamed) and defense-impairment (split from it) are defense-evasion, so a
// builtin rule's defense-evasion hit and a SigmaHQ rule's stealth hit count
// as one tactic. Readers show them in v19 from the techniques (see
// attack.KB.Place).
func V18Tactic(s string) string {
	switch s {
	case "stealth", "defense-impairment":
		return "defense-evasion"
	}
	return s
}

// SortTactics orders tactic shortnames by the ATT&CK matrix (unknown ones
// last, by name).
func SortTactics(ts []string) {
	sort.SliceStable(ts, func(i, j int) bool {
		a, b := tacticOrder[ts[i]], tacticOrder[ts[j]]
		if a == 0 {
			a = 1 << 20
		}
		if b == 0 {
			b = 1 << 20
		}
		if a != b {
			return a < b
		}
		return ts[i] < ts[j]
	})
}

var incidentNamespace = uuid.MustParse("0b6c9d0e-7a51-5e2f-9d3c-4c1e8f2a6b17")

// IncidentID is an incident's id: a v5 UUID of host, root process identity
// and first hit id.
func IncidentID(host, rootKey, firstHit string) string {
	return uuid.NewSHA1(incidentNamespace, []byte(host+"\x00"+rootKey+"\x00"+firstHit)).String()
}

// member is a hit with its process and anchors.
type member struct {
	hit     Hit
	proc    *Process
	anchors []*Process
}

// Grouper resolves hits' processes and groups them.
type Grouper struct {
	opts     Options
	res      *Resolver
	boundary map[string]bool
}

// NewGrouper returns a grouper reading processes from st.
func NewGrouper(st *eventstore.Store, opts Options) *Grouper {
	opts = opts.withDefaults()
	b := make(map[string]bool, len(opts.Boundaries))
	for _, n := range opts.Boundaries {
		b[strings.ToLower(n)] = true
	}
	return &Grouper{opts: opts, res: NewResolver(st), boundary: b}
}

// Resolver returns the grouper's process resolver.
func (g *Grouper) Resolver() *Resolver { return g.res }

func (g *Grouper) isBoundary(p *Process) bool {
	if p.PID == 0 || p.PID == 1 {
		return true
	}
	return g.boundary[p.Name()]
}

// process returns the hit's process: its event's, else the process that
// had its pid then; a hit with neither gets a process of its own.
func (g *Grouper) process(ctx context.Context, h *Hit) (*Process, error) {
	p, err := g.res.ByEID(ctx, h.EID)
	if err != nil || p != nil {
		return p, err
	}
	if h.PID > 0 {
		if p, err = g.res.ByPID(ctx, h.Host, h.PID, h.Time); err != nil || p != nil {
			return p, err
		}
	}
	return g.res.phantom(hitOnlyKey(h.HitID), h.Host, h.PID, "", "", ""), nil
}

// hitOnlyPrefix starts the key of the stand-in process of a hit whose
// process is not known (a task registered, a log cleared).
const hitOnlyPrefix = "h:"

func hitOnlyKey(hitID string) string { return hitOnlyPrefix + hitID }

// isHitOnly reports whether key is a hit's stand-in process.
func isHitOnly(key string) bool { return strings.HasPrefix(key, hitOnlyPrefix) }

func (g *Grouper) anchors(ctx context.Context, h *Hit, p *Process) ([]*Process, error) {
	out := []*Process{p}
	since := h.Time.Add(-g.opts.Window)
	cur := p
	for depth := 0; depth < g.opts.MaxDepth; depth++ {
		par, err := g.res.Parent(ctx, cur)
		if err != nil {
			return nil, err
		}
		if par == nil || par.Phantom || par.Start.IsZero() || par.Start.Before(since) || g.isBoundary(par) {
			break
		}
		out = append(out, par)
		cur = par
	}
	return out, nil
}

// Group groups hits of one host into incidents. hits need not be sorted.
func (g *Grouper) Group(ctx context.Context, hits []Hit) ([]eventstore.IncidentRecord, error) {
	sort.Slice(hits, func(i, j int) bool {
		if !hits[i].Time.Equal(hits[j].Time) {
			return hits[i].Time.Before(hits[j].Time)
		}
		return hits[i].HitID < hits[j].HitID
	})
	eids := make([]int64, len(hits))
	for i := range hits {
		eids[i] = hits[i].EID
	}
	if err := g.res.Prefetch(ctx, eids); err != nil {
		return nil, fmt.Errorf("incidents: %w", err)
	}
	ms := make([]member, len(hits))
	for i := range hits {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p, err := g.process(ctx, &hits[i])
		if err != nil {
			return nil, fmt.Errorf("incidents: hit %s: %w", hits[i].HitID, err)
		}
		as, err := g.anchors(ctx, &hits[i], p)
		if err != nil {
			return nil, fmt.Errorf("incidents: hit %s: %w", hits[i].HitID, err)
		}
		ms[i] = member{hit: hits[i], proc: p, anchors: as}
	}
	comps := link(ms, g.opts.Window)
	loose := make([]bool, len(ms))
	for i := range ms {
		p := ms[i].proc
		loose[i] = (p.Phantom && isHitOnly(p.Key)) || g.isBoundary(p)
	}
	if g.opts.AttachWindow > 0 {
		comps = attach(ms, comps, loose, g.opts.AttachWindow)
	}
	comps, err := g.linkServices(ctx, ms, comps)
	if err != nil {
		return nil, err
	}
	out := make([]eventstore.IncidentRecord, 0, len(comps))
	for _, c := range comps {
		out = append(out, build(ms, c, loose))
	}
	return out, nil
}

// link returns the connected components of hits (sorted by time) linked by
// a shared anchor at most w apart, each component in time order, components
// by their first hit. For hits sharing an anchor, linking each to the
// previous one within w gives the same components as linking every pair.
func link(ms []member, w time.Duration) [][]int {
	parent := make([]int, len(ms))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	last := map[string]int{} // anchor key → last hit index seen with it
	for i := range ms {
		for _, a := range ms[i].anchors {
			if j, ok := last[a.Key]; ok && ms[i].hit.Time.Sub(ms[j].hit.Time) <= w {
				ri, rj := find(i), find(j)
				if ri != rj {
					if ri < rj {
						parent[rj] = ri
					} else {
						parent[ri] = rj
					}
				}
			}
			last[a.Key] = i
		}
	}
	byRoot := map[int][]int{}
	var roots []int
	for i := range ms {
		r := find(i)
		if _, ok := byRoot[r]; !ok {
			roots = append(roots, r)
		}
		byRoot[r] = append(byRoot[r], i)
	}
	out := make([][]int, 0, len(roots))
	for _, r := range roots {
		out = append(out, byRoot[r])
	}
	return out
}

// serviceImage is the executable a service-install event names (System
// 7045 ImagePath, Security 4697 ServiceFileName), by its lower-case base
// name; "" for other events.
func serviceImage(ev *eventstore.StoredEvent) string {
	img := ev.Field("ImagePath")
	if img == "" {
		img = ev.Field("ServiceFileName")
	}
	img = strings.TrimSpace(strings.Trim(strings.TrimSpace(img), `"`))
	if img == "" {
		return ""
	}
	if i := strings.IndexAny(img, " \t"); i > 0 && strings.Contains(strings.ToLower(img[:i]), ".exe") {
		img = img[:i] // arguments after the executable
	}
	return (&Process{Path: img}).Name()
}

// linkServices joins a service's process tree to the incident of the hit on
// the service's installation (7045, 4697): a process started by a boundary
// process (services.exe) at most Window after a service of its executable
// was installed on the host is that service, so what it did belongs with
// whoever installed it (PsExec.exe and the PSEXESVC it starts).
func (g *Grouper) linkServices(ctx context.Context, ms []member, comps [][]int) ([][]int, error) {
	type install struct {
		comp int
		name string
		at   time.Time
	}
	var installs []install
	for c, idx := range comps {
		for _, i := range idx {
			if ev := g.res.events[ms[i].hit.EID]; ev != nil {
				if name := serviceImage(ev); name != "" {
					installs = append(installs, install{c, name, ms[i].hit.Time})
				}
			}
		}
	}
	if len(installs) == 0 {
		return comps, nil
	}
	parent := make([]int, len(comps))
	for c := range parent {
		parent[c] = c
	}
	find := func(c int) int {
		for parent[c] != c {
			c = parent[c]
		}
		return c
	}
	for c, idx := range comps {
		for _, i := range idx {
			top := ms[i].anchors[len(ms[i].anchors)-1]
			if top.Phantom || top.Start.IsZero() {
				continue
			}
			par, err := g.res.Parent(ctx, top)
			if err != nil {
				return nil, fmt.Errorf("incidents: %w", err)
			}
			if par == nil || !g.isBoundary(par) {
				continue
			}
			for _, in := range installs {
				d := top.Start.Sub(in.at)
				if in.name == top.Name() && d >= -time.Second && d <= g.opts.Window {
					a, b := find(c), find(in.comp)
					if a != b {
						parent[max(a, b)] = min(a, b)
					}
				}
			}
		}
	}
	merged := map[int][]int{}
	for c, idx := range comps {
		r := find(c)
		merged[r] = append(merged[r], idx...)
	}
	if len(merged) == len(comps) {
		return comps, nil
	}
	out := make([][]int, 0, len(merged))
	for _, idx := range merged {
		sort.Ints(idx)
		out = append(out, idx)
	}
	sort.Slice(out, func(a, b int) bool { return out[a][0] < out[b][0] })
	return out, nil
}

// attach merges each component made only of loose hits (no ancestry of
// their own) into the component of the nearest firm hit at most w from one
// of its hits (ties: the earlier firm hit); loose components no firm hit is
// near join each other while each follows the previous within w. Members stay in time order and
// components are ordered by their first hit. The result depends only on the
// hits, not on their order of arrival.
func attach(ms []member, comps [][]int, loose []bool, w time.Duration) [][]int {
	compOf := make([]int, len(ms))
	var firm []int // firm members, in time order
	for c, idx := range comps {
		for _, i := range idx {
			compOf[i] = c
		}
	}
	for i := range ms {
		if !loose[i] {
			firm = append(firm, i)
		}
	}
	target := make([]int, len(comps)) // component to merge into; itself when none
	for c := range comps {
		target[c] = c
	}
	var alone []int // loose-only components no firm hit is near
	for c, idx := range comps {
		allLoose := true
		for _, i := range idx {
			allLoose = allLoose && loose[i]
		}
		if !allLoose {
			continue
		}
		best, bestD := -1, w+1
		for _, i := range idx {
			t := ms[i].hit.Time
			// The firm hits nearest to t: the last at or before it and the
			// first after it.
			k := sort.Search(len(firm), func(k int) bool { return ms[firm[k]].hit.Time.After(t) })
			for _, j := range []int{k - 1, k} {
				if j < 0 || j >= len(firm) {
					continue
				}
				d := ms[firm[j]].hit.Time.Sub(t)
				if d < 0 {
					d = -d
				}
				if d < bestD || d == bestD && best >= 0 && firm[j] < best {
					best, bestD = firm[j], d
				}
			}
		}
		if best >= 0 && bestD <= w {
			target[c] = compOf[best]
		} else {
			alone = append(alone, c)
		}
	}
	// Loose hits with no firm hit near them (a host that only recorded a
	// task registration and a share access) are one incident while each
	// follows the previous within w.
	sort.Slice(alone, func(a, b int) bool { return comps[alone[a]][0] < comps[alone[b]][0] })
	for k := 1; k < len(alone); k++ {
		prev, cur := comps[alone[k-1]], comps[alone[k]]
		if ms[cur[0]].hit.Time.Sub(ms[prev[len(prev)-1]].hit.Time) <= w {
			target[alone[k]] = target[alone[k-1]]
		}
	}
	merged := map[int][]int{}
	for c, idx := range comps {
		merged[target[c]] = append(merged[target[c]], idx...)
	}
	out := make([][]int, 0, len(merged))
	for _, idx := range merged {
		sort.Ints(idx) // members are indexed in time order
		out = append(out, idx)
	}
	sort.Slice(out, func(a, b int) bool { return out[a][0] < out[b][0] })
	return out
}

// build makes the incident of the members at idx (in time order).
func build(ms []member, idx []int, loose []bool) eventstore.IncidentRecord {
	first := &ms[idx[0]]
	// The root: the topmost anchor, the one whose parent is not among the
	// incident's anchors (ties, which a forest does not make, go to the
	// earliest start, then the key). Hits that joined without ancestry of
	// their own (loose) give no root when others do.
	in := map[string]*Process{}
	firmOnly := false
	for _, i := range idx {
		firmOnly = firmOnly || !loose[i]
	}
	for _, i := range idx {
		if firmOnly && loose[i] {
			continue
		}
		for _, a := range ms[i].anchors {
			in[a.Key] = a
		}
	}
	var root *Process
	for _, a := range in {
		if a.parent != nil && in[a.parent.Key] != nil {
			continue
		}
		if root == nil || a.Start.Before(root.Start) || (a.Start.Equal(root.Start) && a.Key < root.Key) {
			root = a
		}
	}
	var maxW float64
	sev := ""
	techs := map[string]bool{}
	tacs := map[string]bool{}
	var chain []string // tactics in the order they first appear
	var hitIDs []string
	var top *Hit
	for _, i := range idx {
		h := &ms[i].hit
		hitIDs = append(hitIDs, h.HitID)
		if w := h.Weight(); w > maxW {
			maxW, top = w, h
		}
		if sev == "" || SeverityWeight(h.Severity) > SeverityWeight(sev) {
			sev = h.Severity
		}
		for _, t := range h.Techniques {
			techs[t] = true
		}
		for _, t := range h.Tactics {
			if !tacs[t] {
				tacs[t] = true
				chain = append(chain, t)
			}
		}
	}
	if top == nil {
		top = &first.hit
	}
	tactics := sortedKeys(tacs)
	SortTactics(tactics)
	techniques := sortedKeys(techs)
	sort.Strings(hitIDs)
	nt := max(len(tactics), 1)
	score := maxW*(1+0.5*float64(nt-1)) + 0.5*math.Log(float64(len(idx)))
	score = math.Round(score*100) / 100
	last := &ms[idx[len(idx)-1]].hit
	rootName := root.Name()
	if rootName == "." || rootName == "" {
		rootName = fmt.Sprintf("pid %d", root.PID)
	}
	summary := fmt.Sprintf("%s: %d hit(s), %d technique(s)", rootName, len(idx), len(techniques))
	if len(chain) > 0 {
		summary += " — " + strings.Join(chain, " → ")
	}
	summary += fmt.Sprintf("; strongest: %s (%s)", top.RuleTitle, top.Severity)
	return eventstore.IncidentRecord{
		IncidentID: IncidentID(first.hit.Host, root.Key, first.hit.HitID),
		Host:       first.hit.Host,
		FirstSeen:  first.hit.Time,
		LastSeen:   last.Time,
		Score:      score,
		Severity:   sev,
		Tactics:    strings.Join(tactics, ","),
		Techniques: strings.Join(techniques, ","),
		HitCount:   int64(len(idx)),
		RootPID:    root.PID,
		RootPath:   root.Path,
		RootKey:    root.Key,
		RootEID:    root.EID,
		Summary:    summary,
		HitIDs:     hitIDs,
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
