package web

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/quarry-sec/quarry/fleet/server"
	"github.com/quarry-sec/quarry/fleet/store"
)

// ProcessPackName is the name of the pack ProcessPack returns, and
// ProcessQuery the name of its query (results are logged as
// pack_quarry-process-context_quarry_process_context).
const (
	ProcessPackName = "quarry-process-context"
	ProcessQuery    = "quarry_process_context"
)

// processContextSQL selects, on a host, the process events of the last
// hour's hits, their ancestors and descendants (over the last day), and
// the exit events of all of them. It runs on Quarry's agent and inside
// osquery with the Quarry extension.
const processContextSQL = `WITH RECURSIVE
  ev AS MATERIALIZED (
    SELECT eid, time, pid, parent, path, cmdline, username, syscall, exit_code, parent_path, parent_cmdline,
      process_guid, parent_guid, host_identifier, source
    FROM quarry_process_events
    WHERE time >= CAST(strftime('%s', 'now') AS INTEGER) - 86400),
  hit AS (SELECT DISTINCT eid FROM ioa_hits WHERE time >= CAST(strftime('%s', 'now') AS INTEGER) - 3600 AND eid > 0),
  up(eid, pid, parent, time) AS (
    SELECT e.eid, e.pid, e.parent, e.time FROM ev e JOIN hit ON hit.eid = e.eid
    UNION
    SELECT p.eid, p.pid, p.parent, p.time FROM up JOIN ev p
      ON p.pid = up.parent AND p.syscall = 'execve' AND p.time <= up.time
    WHERE up.parent > 0),
  down(eid, pid, time) AS (
    SELECT e.eid, e.pid, e.time FROM ev e JOIN hit ON hit.eid = e.eid
    UNION
    SELECT c.eid, c.pid, c.time FROM down JOIN ev c
      ON c.parent = down.pid AND c.syscall = 'execve' AND c.time >= down.time),
  tree(eid, pid) AS (SELECT eid, pid FROM up UNION SELECT eid, pid FROM down)
SELECT e.* FROM ev e
WHERE e.eid IN (SELECT eid FROM tree)
   OR (e.syscall = 'exit' AND e.pid IN (SELECT pid FROM tree));`

// ProcessPack is the osquery pack that sends each host's process context
// of its detections (see the package documentation): serve it besides
// Quarry's detection pack (server.Config.FilePacks). Its query uses the
// MATERIALIZED hint of SQLite 3.35 and later (three times faster than
// without it on a day of 72,000 process events).
func ProcessPack() server.Pack {
	q, _ := json.Marshal(map[string]any{
		ProcessQuery: map[string]any{
			"query":    processContextSQL,
			"interval": 60,
			"removed":  false,
			"description": "Process context of the last hour's IoA hits for the fleet's process trees: the hit " +
				"processes' events, their ancestors and descendants, and their exits. Differential: each row is sent once.",
		},
	})
	return server.Pack{
		"queries":   q,
		"discovery": json.RawMessage(`["SELECT 1 FROM osquery_extensions WHERE name = 'quarry'"]`),
	}
}

// procNode is one process of a tree.
type procNode struct {
	EID, PID, PPID int64
	GUID, PGUID    string
	Time           time.Time
	Path, Cmdline  string
	User           string
	Exited         bool
	ExitCode       string
	ExitTime       time.Time
	Synthetic      bool // known only from a child's parent fields
	IsHit          bool // the detection's own process
	Hits           []store.Detection
	Tactics        []chainTactic  // the tactics of its hits (incident graphs)
	Activity       []activityKind // what it did (incident graphs)
	Children       []*procNode
	Raw            map[string]any
}

// activityKind is what a process did of one kind (network, file…): how
// many events, the first few, and the badges of the hits on them.
type activityKind struct {
	Kind   string
	Count  int
	More   int // events counted but not listed
	Items  []activityItem
	Badges []store.Detection // the kind's hits, distinct techniques, strongest first
}

// activityItem is one event of a process's activity.
type activityItem struct {
	Time    time.Time
	Summary string
	EID     int64
	Hits    []store.Detection
}

// A badge on a tree node (procNode.Hits, activityKind.Badges,
// activityItem.Hits) is a detection on the node's event (the "badge"
// template): its TechniqueID, or for an IoC hit (Kind
// telemetry.KindIOC) its RuleTitle, "IOC <indicator>"; linked to the
// detection's page when it has an ID, coloured by Severity. A badge
// known only from an incident's tree (no detection arrived for it) has
// no ID (see techniqueBadge).

// processTree is what the detection page draws: the ancestry from the
// oldest known ancestor down to the hit, and the hit's descendants.
type processTree struct {
	Root    *procNode
	Hit     *procNode
	Events  int // process rows the host sent around the detection
	Missing bool
}

// treeWindow bounds the context rows read around a detection: ancestors
// may have been sent up to a day before (the query looks back a day), and
// descendants for an hour after.
const (
	treeBefore = 25 * time.Hour
	treeAfter  = 2 * time.Hour
	treeRows   = 10000
)

func (ui *UI) processTree(ctx context.Context, d *store.Detection) (*processTree, error) {
	rows, _, err := ui.cfg.Store.Results(ctx, store.ResultFilter{Query: ProcessQuery, HostID: d.HostID,
		Since: d.Time.Add(-treeBefore), Until: d.Time.Add(treeAfter), Limit: treeRows})
	if err != nil {
		return nil, fmt.Errorf("process tree: %w", err)
	}
	var nodes []*procNode
	exits := map[int64][]*procNode{}
	seen := map[int64]bool{}
	for _, r := range rows {
		if r.Action == "removed" {
			continue
		}
		var m map[string]any
		if json.Unmarshal(r.Columns, &m) != nil {
			continue
		}
		n := &procNode{EID: num(m["eid"]), PID: num(m["pid"]), PPID: num(m["parent"]), Time: time.Unix(num(m["time"]), 0).UTC(),
			Path: str(m["path"]), Cmdline: str(m["cmdline"]), User: str(m["username"]),
			GUID: str(m["process_guid"]), PGUID: str(m["parent_guid"]), Raw: m}
		if seen[n.EID] && n.EID != 0 {
			continue
		}
		seen[n.EID] = true
		if str(m["syscall"]) == "exit" {
			n.ExitCode = str(m["exit_code"])
			exits[n.PID] = append(exits[n.PID], n)
			continue
		}
		nodes = append(nodes, n)
	}
	t := &processTree{Events: len(nodes)}
	sort.Slice(nodes, func(i, j int) bool {
		if !nodes[i].Time.Equal(nodes[j].Time) {
			return nodes[i].Time.Before(nodes[j].Time)
		}
		return nodes[i].EID < nodes[j].EID
	})
	// The hit's own process: by event ID, else the latest start of its pid
	// at or before the detection.
	for _, n := range nodes {
		if d.EID != 0 && n.EID == d.EID {
			t.Hit = n
			break
		}
	}
	if t.Hit == nil {
		for _, n := range nodes {
			if n.PID == d.PID && !n.Time.After(d.Time) && (d.Path == "" || n.Path == d.Path) {
				t.Hit = n
			}
		}
	}
	if t.Hit == nil {
		// Nothing sent for this host: draw what the detection knows.
		t.Missing = true
		t.Hit = &procNode{EID: d.EID, PID: d.PID, Time: d.Time, Path: d.Path, Cmdline: d.Cmdline, User: d.Username}
		nodes = append(nodes, t.Hit)
	}
	t.Hit.IsHit = true
	for _, n := range nodes {
		for _, e := range exits[n.PID] {
			if !e.Time.Before(n.Time) && (!n.Exited || e.Time.Before(n.ExitTime)) {
				n.Exited, n.ExitCode, n.ExitTime = true, e.ExitCode, e.Time
			}
		}
	}
	// Each process's parent: by GUID when both sides have one (Sysmon),
	// else the latest start of the parent pid at or before the child's
	// start that had not exited by then.
	byPID := map[int64][]*procNode{} // in start order
	byGUID := map[string]*procNode{}
	for _, n := range nodes {
		byPID[n.PID] = append(byPID[n.PID], n)
		if n.GUID != "" {
			byGUID[n.GUID] = n
		}
	}
	parentOf := map[*procNode]*procNode{}
	children := map[*procNode][]*procNode{}
	for _, c := range nodes {
		var best *procNode
		if c.PGUID != "" && byGUID[c.PGUID] != nil {
			best = byGUID[c.PGUID]
		} else if c.PPID != 0 {
			for _, n := range byPID[c.PPID] {
				if n == c || n.Time.After(c.Time) {
					break
				}
				if !n.Exited || !n.ExitTime.Before(c.Time) {
					best = n
				}
			}
		}
		if best != nil && best != c {
			parentOf[c] = best
			children[best] = append(children[best], c)
		}
	}
	// Ancestry, oldest first.
	chain := []*procNode{t.Hit}
	placed := map[*procNode]bool{t.Hit: true}
	for len(chain) < 64 {
		p := parentOf[chain[0]]
		if p == nil || placed[p] {
			break
		}
		chain = append([]*procNode{p}, chain...)
		placed[p] = true
	}
	if top := chain[0]; d.ParentPath != "" && top == t.Hit {
		// No recorded parent: the detection still names it.
		syn := &procNode{PID: t.Hit.PPID, Path: d.ParentPath, Synthetic: true}
		if pc := str(t.Hit.Raw["parent_cmdline"]); pc != "" {
			syn.Cmdline = pc
		}
		chain = append([]*procNode{syn}, chain...)
		placed[syn] = true
	}
	for i := 0; i+1 < len(chain); i++ {
		chain[i].Children = []*procNode{chain[i+1]}
	}
	t.Root = chain[0]
	// Descendants of the hit, breadth first.
	queue := []*procNode{t.Hit}
	for len(queue) > 0 && len(placed) < 2000 {
		p := queue[0]
		queue = queue[1:]
		for _, n := range children[p] {
			if !placed[n] {
				p.Children = append(p.Children, n)
				placed[n] = true
				queue = append(queue, n)
			}
		}
	}
	// Annotate nodes with the detections on their events.
	if err := ui.annotate(ctx, d, chain[0], placed); err != nil {
		return nil, err
	}
	return t, nil
}

// annotate attaches to each node the detections of the host on its event
// (by event ID, else pid and path), in the span of the tree.
func (ui *UI) annotate(ctx context.Context, d *store.Detection, root *procNode, placed map[*procNode]bool) error {
	lo, hi := d.Time, d.Time
	for n := range placed {
		if n.Synthetic {
			continue
		}
		if n.Time.Before(lo) {
			lo = n.Time
		}
		if n.Time.After(hi) {
			hi = n.Time
		}
	}
	ds, _, err := ui.cfg.Store.Detections(ctx, store.DetectionFilter{HostIDs: []string{d.HostID},
		Since: lo.Add(-time.Second), Until: hi.Add(time.Hour), Limit: 2000})
	if err != nil {
		return fmt.Errorf("process tree: %w", err)
	}
	for n := range placed {
		if n.Synthetic {
			continue
		}
		for _, x := range ds {
			if (x.EID != 0 && x.EID == n.EID) || (x.EID == 0 && x.PID == n.PID && x.Path == n.Path && !x.Time.Before(n.Time)) ||
				(n.IsHit && x.HitID == d.HitID) {
				dup := false
				for _, h := range n.Hits {
					dup = dup || h.TechniqueID == x.TechniqueID && h.RuleTitle == x.RuleTitle
				}
				if !dup {
					n.Hits = append(n.Hits, x)
				}
			}
		}
		sort.SliceStable(n.Hits, func(i, j int) bool { return severityRank(n.Hits[i].Severity) > severityRank(n.Hits[j].Severity) })
	}
	return nil
}

func num(v any) int64 {
	switch x := v.(type) {
	case float64:
		return int64(x)
	case string:
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			f, _ := strconv.ParseFloat(x, 64)
			return int64(f)
		}
		return n
	case json.Number:
		n, _ := x.Int64()
		return n
	}
	return 0
}

func str(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	default:
		return fmt.Sprint(x)
	}
}

func prettyJSON(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
