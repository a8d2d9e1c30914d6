package incidents

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

// Tree limits.
const (
	// MaxTreeNodes bounds the descendants a tree lists.
	MaxTreeNodes = 2000
	// maxTreeDepth bounds how far up and down a tree is walked.
	maxTreeDepth = 64
	// maxActivityEvents bounds the events of a tree's processes read for
	// the hits on them.
	maxActivityEvents = 100000
)

// Relation says where a tree node stands to the process the tree is about.
const (
	RelationAncestor   = "ancestor"
	RelationSelf       = "self"
	RelationDescendant = "descendant"
)

// TreeNode is one process of a tree with what was detected on it.
type TreeNode struct {
	*Process
	// Depth counts from the tree's topmost ancestor (0).
	Depth     int
	Relation  string
	ParentKey string
	Exit      time.Time // zero while running or when no exit is stored
	// Hits on the process (its start events), oldest first.
	Hits []Hit
	// Techniques and Tactics are those of its IoA hits; IOCs the badges of
	// its IoC hits ("IOC <indicator>", distinct, in hit order).
	Techniques []string
	Tactics    []string
	IOCs       []string
	Severity   string // the strongest hit's, "" without hits
}

// Tree is a process with its ancestors and descendants, nodes in
// depth-first order (each parent before its children, children oldest
// first).
type Tree struct {
	Host string
	// Focus is the process the tree is about (Relation self).
	Focus *Process
	Nodes []TreeNode
	// Truncated is set when descendants beyond MaxTreeNodes were left out.
	Truncated bool
}

// TreesOfPID returns a tree for each stored process that had pid (on host,
// or on any host when host is ""), oldest first, at most 16.
func TreesOfPID(ctx context.Context, st *eventstore.Store, host string, pid int64) ([]Tree, error) {
	evs, err := st.ExecsOfPID(ctx, host, pid, 64)
	if err != nil {
		return nil, fmt.Errorf("process tree: %w", err)
	}
	r := NewResolver(st)
	var out []Tree
	seen := map[string]bool{}
	for i := range evs {
		p := r.fromExec(&evs[i])
		id := p.Host + "\x00" + p.Key
		if seen[id] {
			continue
		}
		seen[id] = true
		t, err := buildTree(ctx, st, r, p)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
		if len(out) == 16 {
			break
		}
	}
	return out, nil
}

// TreeOfIncident returns the tree of an incident's root process; ok is
// false when there is no such incident.
func TreeOfIncident(ctx context.Context, st *eventstore.Store, incidentID string) (t Tree, ok bool, err error) {
	var in *eventstore.IncidentRecord
	err = st.ScanIncidents(ctx, eventstore.IncidentFilter{IncidentIDs: []string{incidentID}}, func(r *eventstore.IncidentRecord) bool {
		c := *r
		in = &c
		return false
	})
	if err != nil || in == nil {
		return Tree{}, false, err
	}
	r := NewResolver(st)
	// The incident's hits may be on events other than process starts (a
	// Sysmon file or network event): resolve them first, so their processes'
	// nodes carry them.
	var hitIDs []string
	if err := st.ScanIncidentHits(ctx, []string{incidentID}, nil, func(p eventstore.IncidentHitPair) bool {
		hitIDs = append(hitIDs, p.HitID)
		return true
	}); err != nil {
		return Tree{}, false, fmt.Errorf("process tree of incident %s: %w", incidentID, err)
	}
	var eids []int64
	if err := st.ScanHitsByID(ctx, hitIDs, func(h *telemetry.Hit) bool {
		eids = append(eids, h.EID)
		return true
	}); err != nil {
		return Tree{}, false, fmt.Errorf("process tree of incident %s: %w", incidentID, err)
	}
	if err := r.Prefetch(ctx, eids); err != nil {
		return Tree{}, false, fmt.Errorf("process tree of incident %s: %w", incidentID, err)
	}
	var loose []int64 // events of hits that name no process
	for _, eid := range eids {
		p, err := r.ByEID(ctx, eid)
		if err != nil {
			return Tree{}, false, fmt.Errorf("process tree of incident %s: %w", incidentID, err)
		}
		if p == nil && eid > 0 {
			loose = append(loose, eid)
		}
	}
	root, err := r.ByEID(ctx, in.RootEID)
	if err != nil {
		return Tree{}, false, fmt.Errorf("process tree of incident %s: %w", incidentID, err)
	}
	if root == nil {
		root = r.phantom(in.RootKey, in.Host, in.RootPID, in.RootPath, "", "")
		if isHitOnly(in.RootKey) {
			// An incident of hits that name no process (a task
			// registered, a log cleared): its root stands for them, so
			// its node carries their hits, techniques and severity.
			for _, eid := range loose {
				r.byEID[eid] = root
			}
		}
	}
	t, err = buildTree(ctx, st, r, root)
	return t, true, err
}

func buildTree(ctx context.Context, st *eventstore.Store, r *Resolver, focus *Process) (Tree, error) {
	t := Tree{Host: focus.Host, Focus: focus}
	var up []*Process
	for cur, i := focus, 0; i < maxTreeDepth; i++ {
		par, err := r.Parent(ctx, cur)
		if err != nil {
			return t, fmt.Errorf("process tree: %w", err)
		}
		if par == nil || par == focus {
			break
		}
		up = append(up, par)
		cur = par
	}
	depth := 0
	for i := len(up) - 1; i >= 0; i-- {
		parentKey := ""
		if i+1 < len(up) {
			parentKey = up[i+1].Key
		}
		t.Nodes = append(t.Nodes, TreeNode{Process: up[i], Depth: depth, Relation: RelationAncestor, ParentKey: parentKey})
		depth++
	}
	focusParent := ""
	if len(up) > 0 {
		focusParent = up[0].Key
	}
	t.Nodes = append(t.Nodes, TreeNode{Process: focus, Depth: depth, Relation: RelationSelf, ParentKey: focusParent})
	count := 0
	var walk func(p *Process, d int) error
	walk = func(p *Process, d int) error {
		if d-depth >= maxTreeDepth {
			return nil
		}
		kids, err := r.Children(ctx, p, MaxTreeNodes)
		if err != nil {
			return fmt.Errorf("process tree: %w", err)
		}
		for _, c := range kids {
			if count >= MaxTreeNodes {
				t.Truncated = true
				return nil
			}
			count++
			t.Nodes = append(t.Nodes, TreeNode{Process: c, Depth: d + 1, Relation: RelationDescendant, ParentKey: p.Key})
			if err := walk(c, d+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(focus, depth); err != nil {
		return t, err
	}
	return t, annotate(ctx, st, r, &t)
}

// annotate fills each node's exit and hits.
func annotate(ctx context.Context, st *eventstore.Store, r *Resolver, t *Tree) error {
	idx := map[*Process]int{}
	for i := range t.Nodes {
		idx[t.Nodes[i].Process] = i
		if exit, ok, err := r.Exit(ctx, t.Nodes[i].Process); err != nil {
			return fmt.Errorf("process tree: %w", err)
		} else if ok {
			t.Nodes[i].Exit = exit
		}
	}
	var eids []int64
	nodeOfEID := map[int64]int{}
	for eid, p := range r.byEID {
		if i, ok := idx[p]; ok {
			eids = append(eids, eid)
			nodeOfEID[eid] = i
		}
	}
	// Hits on the processes' other events (connections, files, registry…)
	// are theirs too: the store keys each event to its acting process.
	keyNode := map[string]int{}
	keys := make([]string, 0, len(t.Nodes))
	for i := range t.Nodes {
		if k := t.Nodes[i].Key; k != "" {
			if _, dup := keyNode[k]; !dup {
				keyNode[k] = i
				keys = append(keys, k)
			}
		}
	}
	if len(keys) > 0 {
		err := st.ScanActivity(ctx, eventstore.ActivityFilter{ProcessKeys: keys, NoFields: true, Limit: maxActivityEvents}, func(a *eventstore.Activity) bool {
			if _, known := nodeOfEID[a.EID]; !known {
				if i, ok := keyNode[a.ProcessKey]; ok {
					eids = append(eids, a.EID)
					nodeOfEID[a.EID] = i
				}
			}
			return true
		})
		if err != nil {
			return fmt.Errorf("process tree: events of its processes: %w", err)
		}
	}
	sort.Slice(eids, func(i, j int) bool { return eids[i] < eids[j] })
	var join hitJoin
	nodeOf := map[string]int{}
	err := st.ScanHitsByEIDs(ctx, eids, func(h *telemetry.Hit) bool {
		if join.add(h) {
			nodeOf[h.HitID] = nodeOfEID[h.EID]
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("process tree: %w", err)
	}
	for _, h := range join.hits() {
		n := &t.Nodes[nodeOf[h.HitID]]
		n.Hits = append(n.Hits, h)
		if h.Kind() == telemetry.KindIOC {
			n.IOCs = appendUnique(n.IOCs, h.RuleTitle)
			if n.Severity == "" || SeverityWeight(h.Severity) > SeverityWeight(n.Severity) {
				n.Severity = h.Severity
			}
			continue
		}
		for _, x := range h.Techniques {
			n.Techniques = appendUnique(n.Techniques, x)
		}
		for _, x := range h.Tactics {
			n.Tactics = appendUnique(n.Tactics, x)
		}
		if n.Severity == "" || SeverityWeight(h.Severity) > SeverityWeight(n.Severity) {
			n.Severity = h.Severity
		}
	}
	for i := range t.Nodes {
		sort.Strings(t.Nodes[i].Techniques)
		SortTactics(t.Nodes[i].Tactics)
	}
	return nil
}
