// Package incidenttables serves the incident tables: incidents (hits grouped
// along process ancestry, see detections/incidents), incident_hits, and
// process_tree (a process's ancestors and descendants with what was
// detected on each).
package incidenttables

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/detections/incidents"
	"github.com/quarry-sec/quarry/tables"
	"github.com/quarry-sec/quarry/tables/activity"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

var incidentColumns = []tables.Column{
	{Name: "incident_id", Type: tables.Text, Description: "Incident id: a v5 UUID of host, root process and first hit (stable as hits join)", Index: true},
	{Name: "host_identifier", Type: tables.Text, Description: "Host of the incident", Additional: true},
	{Name: "first_seen", Type: tables.BigInt, Description: "Time of its first hit, UNIX seconds", Additional: true},
	{Name: "last_seen", Type: tables.BigInt, Description: "Time of its last hit, UNIX seconds", Additional: true},
	{Name: "score", Type: tables.Double, Description: "max(severity x confidence) x (1 + 0.5 x (tactics - 1)) + 0.5 x ln(hits)"},
	{Name: "severity", Type: tables.Text, Description: "Its strongest hit's severity"},
	{Name: "tactics", Type: tables.Text, Description: "ATT&CK tactic shortnames of attack_version, comma-separated, in its matrix order"},
	{Name: "techniques", Type: tables.Text, Description: "ATT&CK technique IDs as the rules name them, comma-separated"},
	{Name: "hit_count", Type: tables.BigInt, Description: "Number of hits (hit_id) in the incident"},
	{Name: "root_pid", Type: tables.BigInt, Description: "Process id of the incident's root process"},
	{Name: "root_path", Type: tables.Text, Description: "Executable of the root process"},
	{Name: "summary", Type: tables.Text, Description: "Root, hits, tactics (v18.1) in the order they appeared, strongest rule"},
	{Name: "detected_at", Type: tables.BigInt, Description: "When Quarry last found a hit of it, UNIX seconds (an incident that grows is detected again): later than last_seen for an imported recording", Additional: true},
	{Name: "attack_version", Type: tables.Text, Description: "ATT&CK version of tactics: 18.1 (default) or 19 (WHERE attack_version = '19')", Hidden: true},
}

// Incidents returns the incidents table over st; tactics are given in the
// attack_version asked for, resolved in kb.
func Incidents(st *eventstore.Store, kb *attack.KB) tables.Table {
	return tables.Table{
		Name: "incidents",
		Description: "Incidents: detection hits grouped along process ancestry on one host (a process and its recently " +
			"started ancestors; hits at most 30 minutes apart), scored by severity, confidence and the number of " +
			"distinct tactics. Join incident_hits for the hits, process_tree (incident_id = …) for the tree.",
		Columns: incidentColumns,
		Generate: func(ctx context.Context, q tables.QueryContext, emit tables.EmitFunc) error {
			var f eventstore.IncidentFilter
			if ids, ok := q.EqualStrings("incident_id"); ok {
				if len(ids) == 0 {
					return nil
				}
				f.IncidentIDs = ids
			}
			if hosts, ok := q.EqualStrings("host_identifier"); ok {
				if len(hosts) == 0 {
					return nil
				}
				f.Hosts = hosts
			}
			// An incident overlaps [lo, hi] of last_seen/first_seen.
			f.Since, _, _ = q.TimeRange("last_seen")
			_, f.Until, _ = q.TimeRange("first_seen")
			var none bool
			if f.DetectedSince, f.DetectedUntil, none = q.TimeRange("detected_at"); none {
				return nil
			}
			version, v19, ok := tables.AskedAttackVersion(q)
			if !ok {
				return nil
			}
			row := make(tables.Row, len(incidentColumns))
			return st.ScanIncidents(ctx, f, func(r *eventstore.IncidentRecord) bool {
				row[0] = r.IncidentID
				row[1] = r.Host
				row[2] = r.FirstSeen.Unix()
				row[3] = r.LastSeen.Unix()
				row[4] = r.Score
				row[5] = r.Severity
				row[6] = r.Tactics
				if kb != nil {
					row[6] = strings.Join(kb.TacticsOf(splitIDs(r.Techniques), splitIDs(r.Tactics), v19), ",")
				}
				row[7] = r.Techniques
				row[8] = r.HitCount
				row[9] = r.RootPID
				row[10] = r.RootPath
				row[11] = r.Summary
				row[12] = int64(0)
				if !r.DetectedAt.IsZero() {
					row[12] = r.DetectedAt.Unix()
				}
				row[13] = version
				return emit(row)
			})
		},
	}
}

// IncidentHits returns the incident_hits table over st.
func IncidentHits(st *eventstore.Store) tables.Table {
	cols := []tables.Column{
		{Name: "incident_id", Type: tables.Text, Description: "The incident", Index: true},
		{Name: "hit_id", Type: tables.Text, Description: "One of its hits (join ioa_hits.hit_id)", Additional: true},
	}
	return tables.Table{
		Name:        "incident_hits",
		Description: "Which hits each incident holds: one row per incident and hit_id.",
		Columns:     cols,
		Generate: func(ctx context.Context, q tables.QueryContext, emit tables.EmitFunc) error {
			ids, okI := q.EqualStrings("incident_id")
			hits, okH := q.EqualStrings("hit_id")
			if (okI && len(ids) == 0) || (okH && len(hits) == 0) {
				return nil
			}
			row := make(tables.Row, 2)
			return st.ScanIncidentHits(ctx, ids, hits, func(p eventstore.IncidentHitPair) bool {
				row[0], row[1] = p.IncidentID, p.HitID
				return emit(row)
			})
		},
	}
}

var treeColumns = []tables.Column{
	{Name: "pid", Type: tables.BigInt, Description: "The process asked for (WHERE pid = …): the same in every row of its tree", Additional: true},
	{Name: "incident_id", Type: tables.Text, Description: "The incident asked for (WHERE incident_id = …); its root process's tree", Additional: true},
	{Name: "host_identifier", Type: tables.Text, Description: "Host of the tree", Additional: true},
	{Name: "depth", Type: tables.Integer, Description: "Depth from the tree's topmost ancestor (0)"},
	{Name: "relation", Type: tables.Text, Description: "ancestor, self (the process asked for, or the incident's root) or descendant"},
	{Name: "process_key", Type: tables.Text, Description: "The process's identity: g:<process guid>, s:<pid>:<start ns>, e:<pid>:<start event ns>; u:/g: for a parent only its children name"},
	{Name: "parent_key", Type: tables.Text, Description: "process_key of its parent in the tree, empty at the top"},
	{Name: "node_pid", Type: tables.BigInt, Description: "The process's pid"},
	{Name: "node_ppid", Type: tables.BigInt, Description: "Its parent's pid (-1 when unknown)"},
	{Name: "path", Type: tables.Text, Description: "Executable (the latest, when the process replaced its image)"},
	{Name: "cmdline", Type: tables.Text, Description: "Command line"},
	{Name: "username", Type: tables.Text, Description: "User"},
	{Name: "start_time", Type: tables.BigInt, Description: "Start, UNIX seconds (0 when unknown)"},
	{Name: "exit_time", Type: tables.BigInt, Description: "Exit, UNIX seconds (0 while running or unknown)"},
	{Name: "exited", Type: tables.Integer, Description: "1 when an exit is stored"},
	{Name: "eid", Type: tables.BigInt, Description: "eid of its start event in process_events (0 when not stored)"},
	{Name: "hit_count", Type: tables.BigInt, Description: "Hits on the process"},
	{Name: "techniques", Type: tables.Text, Description: "ATT&CK techniques of those hits, comma-separated"},
	{Name: "tactics", Type: tables.Text, Description: "Their tactics, in matrix order"},
	{Name: "severity", Type: tables.Text, Description: "The strongest hit's severity, empty without hits"},
	{Name: "activity", Type: tables.Text, Description: "What the process did besides starting children, as JSON by kind (network, file, registry, dns, image_load, process_access…): {kind: {count, items: [{time, summary, eid, techniques, severity}]}}, the first 3 events of each kind listed with the techniques of the hits on them; NULL when none"},
}

// errTreeConstraint is process_tree's answer to a query naming neither a
// pid nor an incident.
var errTreeConstraint = errors.New("process_tree needs WHERE pid = … [AND host_identifier = …] or WHERE incident_id = …")

// ProcessTree returns the process_tree table over st: a table-valued query
// whose WHERE pid = … (optionally AND host_identifier = …) or incident_id = …
// chooses the trees.
func ProcessTree(st *eventstore.Store) tables.Table {
	return tables.Table{
		Name:          "process_tree",
		RequiresOneOf: []string{"pid", "incident_id"},
		Description: "Ancestors and descendants of a process, exited ones included, with each node's depth, techniques " +
			"and hit count. Give WHERE pid = … (one tree per stored process that had the pid; add host_identifier " +
			"= …) or WHERE incident_id = … (the tree of the incident's root). Processes are told apart by GUID or " +
			"pid and start time, so a reused pid starts a tree of its own.",
		Columns: treeColumns,
		Generate: func(ctx context.Context, q tables.QueryContext, emit tables.EmitFunc) error {
			pids, okP := q.Equals("pid")
			ids, okI := q.EqualStrings("incident_id")
			hosts, okH := q.EqualStrings("host_identifier")
			if !okP && !okI {
				return errTreeConstraint
			}
			if okH && len(hosts) == 0 {
				return nil
			}
			if !okH {
				hosts = []string{""}
			}
			row := make(tables.Row, len(treeColumns))
			for _, id := range ids {
				t, ok, err := incidents.TreeOfIncident(ctx, st, id)
				if err != nil {
					return err
				}
				if !ok {
					continue
				}
				act, err := treeActivity(ctx, st, t, q)
				if err != nil {
					return err
				}
				if !emitTree(t, act, nil, id, row, emit) {
					return nil
				}
			}
			for _, v := range pids {
				var pid int64
				switch x := v.(type) {
				case int64:
					pid = x
				case float64:
					pid = int64(x)
				default:
					continue
				}
				for _, h := range hosts {
					trees, err := incidents.TreesOfPID(ctx, st, h, pid)
					if err != nil {
						return err
					}
					for _, t := range trees {
						act, err := treeActivity(ctx, st, t, q)
						if err != nil {
							return err
						}
						if !emitTree(t, act, pid, nil, row, emit) {
							return nil
						}
					}
				}
			}
			return ctx.Err()
		},
	}
}

// treeActivity reads the activity of a tree's processes when the query
// reads the activity column.
func treeActivity(ctx context.Context, st *eventstore.Store, t incidents.Tree, q tables.QueryContext) (map[string]activity.ProcessActivity, error) {
	if !q.Uses("activity") {
		return nil, nil
	}
	keys := make([]string, len(t.Nodes))
	for i := range t.Nodes {
		keys[i] = t.Nodes[i].Key
	}
	return activity.TreeActivity(ctx, st, keys, activity.PerKind)
}

func emitTree(t incidents.Tree, act map[string]activity.ProcessActivity, pid, incidentID any, row tables.Row, emit tables.EmitFunc) bool {
	for _, n := range t.Nodes {
		row[0] = pid
		row[1] = incidentID
		row[2] = t.Host
		row[3] = int64(n.Depth)
		row[4] = n.Relation
		row[5] = n.Key
		row[6] = n.ParentKey
		row[7] = n.PID
		row[8] = n.PPID
		row[9] = n.Path
		row[10] = n.Cmdline
		row[11] = n.User
		row[12] = unix(n.Start)
		row[13] = unix(n.Exit)
		row[14] = boolInt(!n.Exit.IsZero())
		row[15] = n.EID
		row[16] = int64(len(n.Hits))
		row[17] = strings.Join(n.Techniques, ",")
		row[18] = strings.Join(n.Tactics, ",")
		row[19] = n.Severity
		row[20] = nil
		if j := act[n.Key].JSON(); j != "" {
			row[20] = j
		}
		if !emit(row) {
			return false
		}
	}
	return true
}

func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

var relatedColumns = []tables.Column{
	{Name: "incident_id", Type: tables.Text, Description: "The incident asked for (WHERE incident_id = …)", Required: true},
	{Name: "related_id", Type: tables.Text, Description: "An incident related to it"},
	{Name: "host_identifier", Type: tables.Text, Description: "The related incident's host"},
	{Name: "indicator", Type: tables.Text, Description: "What a hit of each shares, at most 30 minutes apart: user, cmdline or hashes"},
	{Name: "value", Type: tables.Text, Description: "The shared user, command line or Sysmon hashes"},
}

// RelatedIncidents returns the related_incidents table over st: incidents
// on any host whose hits share a user, command line or process hashes with
// the given incident's (detections/incidents.Related).
func RelatedIncidents(st *eventstore.Store) tables.Table {
	return tables.Table{
		Name: "related_incidents",
		Description: "Incidents related to an incident across hosts (or across trees of one host): a hit of each, at most " +
			"30 minutes apart, shares a user (system accounts excepted), a command line of 16 or more bytes, or the " +
			"process hashes. Give WHERE incident_id = ….",
		Columns: relatedColumns,
		Generate: func(ctx context.Context, q tables.QueryContext, emit tables.EmitFunc) error {
			ids, ok := q.EqualStrings("incident_id")
			if !ok {
				return errors.New("related_incidents needs WHERE incident_id = …")
			}
			row := make(tables.Row, len(relatedColumns))
			for _, id := range ids {
				links, err := incidents.Related(ctx, st, id, incidents.Options{})
				if err != nil {
					return err
				}
				for _, l := range links {
					row[0], row[1], row[2], row[3], row[4] = l.IncidentID, l.RelatedID, l.Host, l.Share, l.Value
					if !emit(row) {
						return nil
					}
				}
			}
			return nil
		},
	}
}

// splitIDs splits a stored comma-separated list; empty gives none.
func splitIDs(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
