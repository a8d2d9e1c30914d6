// Package packs holds Quarry's scheduled detection queries in osquery's pack
// format: queries that join ioa_hits and the process telemetry with the
// attack_* tables, for osqueryd with the Quarry extension, Quarry's agent and
// the fleet server alike.
//
// Inside osquery, Quarry's process table is quarry_process_events (osquery
// has its own process_events); the embedded engine serves that name too, so
// every query here runs on both engines.
package packs

import (
	"encoding/json"
	"io"
	"sort"
)

// Pack is an osquery query pack.
type Pack struct {
	Platform  string           `json:"platform,omitempty"`
	Version   string           `json:"version,omitempty"`
	Discovery []string         `json:"discovery,omitempty"`
	Queries   map[string]Query `json:"queries"`
}

// Query is one scheduled query of a pack.
type Query struct {
	Query       string `json:"query"`
	Interval    int    `json:"interval"`
	Description string `json:"description"`
	Platform    string `json:"platform,omitempty"`
	Version     string `json:"version,omitempty"`
	Snapshot    bool   `json:"snapshot,omitempty"`
	Removed     bool   `json:"removed"`
	Shard       int    `json:"shard,omitempty"`
}

// Name is the pack's name in osquery's config ("packs": {"quarry-detections": …}).
const Name = "quarry-detections"

// MinimumOsquery is the osquery version the pack asks for (extension tables
// in scheduled queries).
const MinimumOsquery = "5.0.0"

// Detection returns Quarry's detection pack. Query names are stable: the
// fleet recognizes results of the ioa-hit queries by name.
func Detection() Pack {
	return Pack{
		Version:   MinimumOsquery,
		Discovery: []string{"SELECT 1 FROM osquery_extensions WHERE name = 'quarry'"},
		Queries: map[string]Query{
			QueryHits: {
				Query: `SELECT h.hit_id, h.time, h.detected_at, h.host_identifier, h.rule_id, h.rule_title, h.rule_author, h.rule_source,
  h.technique_id, h.technique_name, h.tactic, h.severity, h.confidence, h.description, h.recommendations,
  h.eid, h.pid, h.path, h.cmdline, h.parent_path, h.username, h.source
FROM ioa_hits h
WHERE h.detected_at >= CAST(strftime('%s', 'now') AS INTEGER) - 3600;`,
				Interval:    60,
				Description: "IoA detections (medium and higher) and IoC hits (threat intelligence indicators found in events: rule_source 'intel', kind 'ioc' in ioa_hits, rule_title 'IOC <indicator>'; the query leaves out the kind column so that hosts whose ioa_hits predates it keep reporting) found in the last hour, whenever their events happened (live, imported or scan --store), one row per hit and ATT&CK technique (v18.1 tactics; 'untagged' when the rule names none), with the rule's author, severity, confidence, description and recommendations. Differential: each new hit is logged once.",
				Platform:    "linux",
			},
			QueryHighSeverity: {
				Query: `SELECT h.hit_id, h.time, h.detected_at, h.severity, h.confidence, h.rule_title, h.rule_author,
  h.technique_id, h.technique_name, h.tactic AS tactics, ta.name AS tactic_name, ta.matrix_order,
  h.pid, h.cmdline, h.parent_path, h.username, h.recommendations
FROM ioa_hits h
LEFT JOIN attack_tactics ta ON ta.shortname = substr(h.tactic || ',', 1, instr(h.tactic || ',', ',') - 1)
WHERE h.severity IN ('high', 'critical')
  AND h.detected_at >= CAST(strftime('%s', 'now') AS INTEGER) - 3600;`,
				Interval:    60,
				Description: "New high and critical detections (found in the last hour) with their ATT&CK technique and tactic names (v18.1), for alerting.",
				Platform:    "linux",
			},
			QueryPerTechniqueHourly: {
				Query: `SELECT h.technique_id, h.technique_name, h.tactic AS tactics,
  (h.time / 3600) * 3600 AS hour, count(DISTINCT h.hit_id) AS hits, max(h.severity = 'critical') AS any_critical
FROM ioa_hits h
WHERE h.detected_at >= CAST(strftime('%s', 'now') AS INTEGER) - 86400
GROUP BY h.technique_id, hour
ORDER BY hour, hits DESC;`,
				Interval:    3600,
				Snapshot:    true,
				Description: "Detections found in the last day per ATT&CK technique and hour of their events (a snapshot each hour): the heat map's input.",
				Platform:    "linux",
			},
			QueryTaggedNoAlert: {
				Query: `SELECT e.eid, e.time, e.pid, e.parent, e.path, e.cmdline, e.parent_path, e.username, e.techniques,
  (SELECT group_concat(t.name, '; ') FROM attack_techniques t
     WHERE ',' || e.techniques || ',' LIKE '%,' || t.id || ',%') AS technique_names
FROM quarry_process_events e
WHERE e.techniques != ''
  AND e.time >= CAST(strftime('%s', 'now') AS INTEGER) - 3600
  AND NOT EXISTS (SELECT 1 FROM ioa_hits h WHERE h.eid = e.eid);`,
				Interval:    300,
				Description: "Processes that informational or low rules tagged with an ATT&CK technique but that raised no alert: hunt by technique where nothing fired.",
				Platform:    "linux",
			},
			QueryIncidents: {
				Query: `SELECT i.incident_id, i.host_identifier, i.first_seen, i.last_seen, i.score, i.severity, i.tactics,
  i.techniques, i.hit_count, i.root_pid, i.root_path, i.summary,
  i.detected_at, (SELECT group_concat(ih.hit_id) FROM incident_hits ih WHERE ih.incident_id = i.incident_id) AS hit_ids
FROM incidents i
WHERE i.detected_at >= CAST(strftime('%s', 'now') AS INTEGER) - 86400;`,
				Interval:    60,
				Description: "Incidents detected in the last day, whenever their events happened (hits grouped along process ancestry), with their score, tactics (v18.1), techniques and hit IDs. Differential: an incident is logged again whenever it grows.",
				Platform:    "linux",
			},
			QueryIncidentTree: {
				Query: `SELECT t.incident_id, t.depth, t.relation, t.process_key, t.parent_key, t.node_pid, t.node_ppid, t.path,
  t.cmdline, t.username, t.start_time, t.exit_time, t.exited, t.eid, t.hit_count, t.techniques, t.tactics, t.severity,
  t.activity
FROM incidents i CROSS JOIN process_tree t ON t.incident_id = i.incident_id
WHERE i.detected_at >= CAST(strftime('%s', 'now') AS INTEGER) - 86400;`,
				Interval:    60,
				Description: "The process trees of the incidents detected in the last day: one row per process with its depth, parent, command line, user, start and exit, the techniques of its hits, and what it did (activity: connections, files, registry… with the techniques of the hits on them). Differential: a node is logged again when it changes.",
				Platform:    "linux",
			},
			QuerySandboxRuns: {
				Query: `SELECT r.run_id, r.origin, r.host_identifier, r.sample, r.sha256, r.sha1, r.md5, r.size, r.started,
  r.duration_ms, r.verdict, r.score, r.techniques, r.tactics, r.tree, r.files, r.network, r.rules
FROM sandbox_runs r
WHERE r.stored_at >= CAST(strftime('%s', 'now') AS INTEGER) - 86400;`,
				Interval:    60,
				Description: "Sandbox runs stored in the last day (quarry detonate, or an imported report of an older run): the sample's name and hashes, the verdict, score, techniques and tactics, the process tree with technique badges, files dropped, network destinations and rules fired (bounded JSON); the run's events are on the host with source 'sandbox'. Differential: each run is logged once.",
				Platform:    "linux",
			},
			QueryTechniqueCoverage: {
				Query: `SELECT t.id AS technique_id, t.name, t.tactics, count(r.id) AS rules
FROM attack_techniques t
JOIN ioa_rules r ON ',' || r.techniques || ',' LIKE '%,' || t.id || ',%'
WHERE t.revoked = 0 AND t.deprecated = 0
GROUP BY t.id;`,
				Interval:    86400,
				Snapshot:    true,
				Description: "Enabled detection rules per ATT&CK technique (the coverage layer), daily.",
			},
		},
	}
}

// Names of the pack's queries.
const (
	QueryHits               = "quarry_ioa_hits"
	QueryHighSeverity       = "quarry_high_severity_hits"
	QueryPerTechniqueHourly = "quarry_hits_per_technique_hourly"
	QueryTaggedNoAlert      = "quarry_tagged_processes_without_alert"
	QueryTechniqueCoverage  = "quarry_technique_coverage"
	// QueryIncidents and QueryIncidentTree report the host's incidents
	// and their process trees; the fleet stores them as incidents.
	QueryIncidents    = "quarry_incidents"
	QueryIncidentTree = "quarry_incident_tree"
	// QuerySandboxRuns reports the host's sandbox runs.
	QuerySandboxRuns = "quarry_sandbox_runs"
)

// Names returns the pack's query names, sorted.
func (p Pack) Names() []string {
	out := make([]string, 0, len(p.Queries))
	for n := range p.Queries {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Write writes the pack as osquery reads it (indented JSON).
func (p Pack) Write(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(p)
}
