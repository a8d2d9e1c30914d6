package store

import (
	"encoding/json"
	"github.com/quarry-sec/quarry/telemetry"
	"strings"
	"time"
)

// Host is an enrolled osquery host.
type Host struct {
	ID             string `json:"id"`
	NodeKey        string `json:"-"`
	HostIdentifier string `json:"host_identifier"`
	Hostname       string `json:"hostname"`
	// Platform is osquery's os_version.platform: ubuntu, rhel, darwin,
	// windows…
	Platform string `json:"platform"`
	// Family is linux, darwin, windows or freebsd: what pack platform
	// filters and hunt targets compare with.
	Family         string    `json:"platform_family"`
	OSVersion      string    `json:"os_version"`
	OsqueryVersion string    `json:"osquery_version"`
	QuarryVersion  string    `json:"quarry_version,omitempty"`
	EnrolledAt     time.Time `json:"enrolled_at"`
	LastSeen       time.Time `json:"last_seen"`
}

// MatchHosts resolves host names given by an analyst — a host's ID, or the
// host identifier it enrolled with, in any case — to host IDs, each once,
// and returns the names no host has apart. The hostname a host reports is
// not matched: any host may claim any hostname (MatchHostnames matches it
// when asked for).
func MatchHosts(hosts []Host, names []string) (ids, unknown []string) {
	return matchHosts(hosts, names, func(h *Host, n string) bool {
		return h.ID == n || strings.EqualFold(h.HostIdentifier, n)
	})
}

// MatchHostnames is MatchHosts by the hostname hosts report (any case):
// several hosts may report one.
func MatchHostnames(hosts []Host, names []string) (ids, unknown []string) {
	return matchHosts(hosts, names, func(h *Host, n string) bool { return strings.EqualFold(h.Hostname, n) })
}

func matchHosts(hosts []Host, names []string, match func(*Host, string) bool) (ids, unknown []string) {
	seen := map[string]bool{}
	for _, n := range names {
		found := false
		for i := range hosts {
			h := &hosts[i]
			if match(h, n) {
				found = true
				if !seen[h.ID] {
					seen[h.ID] = true
					ids = append(ids, h.ID)
				}
			}
		}
		if !found {
			unknown = append(unknown, n)
		}
	}
	return ids, unknown
}

// HostLogs is one host's log request, for AppendHostLogs.
type HostLogs struct {
	HostID string
	Batch  *LogBatch
}

// LogBatch is what one log request of a host stores.
type LogBatch struct {
	Results    []Result
	Statuses   []StatusLog
	Detections []Detection
	// Incidents and IncidentNodes are the host's incidents and the
	// process-tree nodes of their graphs, as the detection pack's
	// incident queries reported them.
	Incidents     []Incident
	IncidentNodes []IncidentNode
	// GoneIncidents are incidents the host no longer has (merged into
	// another, or deleted): AppendLogs deletes them, their hits and their
	// tree nodes (see Store.AppendLogs).
	GoneIncidents []GoneIncident
}

// Empty reports whether b stores nothing.
func (b *LogBatch) Empty() bool {
	return len(b.Results)+len(b.Statuses)+len(b.Detections)+len(b.Incidents)+len(b.IncidentNodes)+len(b.GoneIncidents) == 0
}

// GoneIncident is an incident a host reported it no longer has: the
// incidents query's removed row, with no added row of the same incident
// ID in the same result log, for an incident still inside the query's
// window.
type GoneIncident struct {
	IncidentID string
	// LastSeen is the removed row's last_seen: the state the host last
	// reported. A stored incident last seen later is a newer state of it
	// and is kept.
	LastSeen time.Time
	// Reported is the result log's time; a stored incident reported later
	// is kept.
	Reported time.Time
}

// Result is one row of a scheduled query's result log.
type Result struct {
	ID     int64  `json:"id"`
	HostID string `json:"host_id"`
	// Name is the name osquery logged (pack_<pack>_<query> for packs);
	// Query is the query's own name within its pack.
	Name   string    `json:"name"`
	Query  string    `json:"query"`
	Action string    `json:"action"` // added, removed or snapshot
	Time   time.Time `json:"time"`
	// Epoch and Counter are osquery's: the schedule epoch and the query's
	// run counter the log carried (0 when it carried none). With the host,
	// Name, Action, Time and the row itself they identify a row, so a log
	// a host sends again is stored once (see Store.AppendLogs).
	Epoch   int64 `json:"epoch"`
	Counter int64 `json:"counter"`
	// Columns is the row as a JSON object; Decorations osquery's
	// decorations, a JSON object or nil.
	Columns     json.RawMessage `json:"columns"`
	Decorations json.RawMessage `json:"decorations,omitempty"`
}

// StatusLog is one line of osquery's status log.
type StatusLog struct {
	HostID   string    `json:"host_id"`
	Time     time.Time `json:"time"`
	Severity int       `json:"severity"`
	Filename string    `json:"filename"`
	Line     int       `json:"line"`
	Message  string    `json:"message"`
	Version  string    `json:"version"`
}

// ResultFilter selects result rows. Query matches Name or Query.
type ResultFilter struct {
	// Query matches a row's name (as osquery logged it) or its query's
	// name in its pack.
	Query string
	// Names are further names a row's name may have (the same query
	// logged under another pack delimiter: pack_p_q and pack/p/q).
	Names         []string
	HostID        string
	Since, Until  time.Time // Until is exclusive; zero: no bound
	Limit, Offset int
}

// Detection is an IoA hit a host reported, one per hit and technique.
type Detection struct {
	ID             int64  `json:"id"`
	HostID         string `json:"host_id"`
	HostIdentifier string `json:"host_identifier"` // filled on read
	Hostname       string `json:"hostname"`        // filled on read
	Query          string `json:"query"`           // the query that reported it
	// Hit is the ioa_hits row the host sent. Its TechniqueID is
	// telemetry.Untagged when the rule names none; its Host is not kept
	// (HostIdentifier names the host, shadowing it in JSON); its
	// DetectedAt is when the host's Quarry found the hit (ioa_hits'
	// detected_at), later than Time for an imported recording or a scan of
	// stored history, and the log's time for a host that does not report
	// it.
	telemetry.Hit
	ReceivedAt time.Time `json:"received_at"`
	// Kind is telemetry.KindIOA for a rule's hit, KindIOC for a threat
	// intelligence indicator found in an event (rule_source
	// telemetry.RuleSourceIntel); filled on read from RuleSource.
	Kind string `json:"kind"`
}

// TimeField is the time a filter's Since and Until bound: the event's
// (TimeEvent, the zero value) or the detection's (TimeDetected).
type TimeField int

// Time fields.
const (
	TimeEvent TimeField = iota
	TimeDetected
)

// DetectionFilter selects detections. Within a field values are ORed;
// fields are ANDed. A technique value matches itself and, for a parent
// technique (T1003), its sub-techniques (T1003.001); a tactic value is a
// shortname matched against each of a detection's tactics.
type DetectionFilter struct {
	Techniques []string
	Tactics    []string
	Severities []string
	HostIDs    []string
	// Kind keeps only detections of one kind (KindIOA or KindIOC) when set.
	Kind         string
	Since, Until time.Time // Until is exclusive; zero: no bound
	// By says which time Since and Until bound, and orders the page
	// (newest first by that time).
	By            TimeField
	Limit, Offset int
}

// GroupKey is what CountDetections groups by.
type GroupKey int

// Group keys. KeyDay's value is the day's start in UNIX seconds (UTC);
// KeyTactic's the comma-separated tactics as stored.
const (
	KeyTechnique GroupKey = iota
	KeyTactic
	KeyHost
	KeyDay
	KeyRule
)

// Count is one group of CountDetections: its key values, in the order of
// the keys asked for, and its count.
type Count struct {
	Keys []string
	N    int64
}

// Hunt is a live query sent to hosts through osquery's distributed API.
type Hunt struct {
	ID       string    `json:"id"`
	SQL      string    `json:"sql"`
	Targets  Targets   `json:"targets"`
	Created  time.Time `json:"created"`
	Deadline time.Time `json:"deadline"`
}

// Targets is who a hunt is for: all hosts, named hosts or a platform.
type Targets struct {
	All      bool     `json:"all,omitempty"`
	Hosts    []string `json:"hosts,omitempty"`
	Platform string   `json:"platform,omitempty"`
}

// Hunt host states as stored; the server reports a pending host past the
// deadline as expired.
const (
	HuntPending  = "pending"
	HuntAnswered = "answered"
	HuntError    = "error"
	HuntExpired  = "expired"
)

// HuntHost is one target host's state in a hunt.
type HuntHost struct {
	HostID         string    `json:"host_id"`
	HostIdentifier string    `json:"host_identifier"`
	Hostname       string    `json:"hostname"`
	Status         string    `json:"status"`
	Message        string    `json:"message,omitempty"`
	Rows           int       `json:"rows"`
	SentAt         time.Time `json:"sent_at,omitzero"`
	AnsweredAt     time.Time `json:"answered_at,omitzero"`
}

// HuntRow is one result row of a hunt.
type HuntRow struct {
	HostID  string          `json:"host_id"`
	Columns json.RawMessage `json:"columns"`
}

// Answer is a host's answer to a hunt: rows, or a non-zero osquery status
// with its message.
type Answer struct {
	Rows    []json.RawMessage
	Status  int
	Message string
	At      time.Time
}

// Incident is an incident a host reported: its detection hits grouped
// along process ancestry (see detections/incidents), as the host's
// incidents table had it when Reported.
type Incident struct {
	// ID is the fleet's number for the incident; IncidentID the host's
	// (a v5 UUID). A host's incident is stored once, under (host,
	// IncidentID).
	ID             int64     `json:"id"`
	HostID         string    `json:"host_id"`
	HostIdentifier string    `json:"host_identifier"` // filled on read
	Hostname       string    `json:"hostname"`        // filled on read
	IncidentID     string    `json:"incident_id"`
	FirstSeen      time.Time `json:"first_seen"`
	LastSeen       time.Time `json:"last_seen"`
	Score          float64   `json:"score"`
	Severity       string    `json:"severity"`
	// Tactics are ATT&CK tactic shortnames in matrix order; Techniques
	// technique IDs.
	Tactics    []string `json:"tactics"`
	Techniques []string `json:"techniques"`
	HitCount   int64    `json:"hit_count"`
	RootPID    int64    `json:"root_pid"`
	RootPath   string   `json:"root_path"`
	Summary    string   `json:"summary"`
	// HitIDs are the incident's hits (ioa_hits.hit_id, the detections'
	// HitID). Filled on write; on read only by IncidentHits.
	HitIDs []string `json:"-"`
	// Reported is when the host ran the query that reported this state
	// (the result log's time); the latest report wins.
	Reported   time.Time `json:"reported"`
	ReceivedAt time.Time `json:"received_at"`
	// DetectedAt is when the host's Quarry last found a hit of the
	// incident (incidents' detected_at); the report's time for a host
	// that does not report it.
	DetectedAt time.Time `json:"detected_at"`
}

// IncidentNode is one process of an incident's process tree (a
// process_tree row of the host, WHERE incident_id = …).
type IncidentNode struct {
	IncidentID string `json:"-"`
	// ProcessKey identifies the process in the tree; ParentKey is its
	// parent's key, empty at the top.
	ProcessKey string    `json:"process_key"`
	ParentKey  string    `json:"parent_key"`
	Depth      int       `json:"depth"`
	Relation   string    `json:"relation"` // ancestor, self (the root) or descendant
	PID        int64     `json:"pid"`
	PPID       int64     `json:"ppid"`
	Path       string    `json:"path"`
	Cmdline    string    `json:"cmdline"`
	Username   string    `json:"user"`
	Start      time.Time `json:"time,omitzero"`
	Exit       time.Time `json:"exit,omitzero"`
	Exited     bool      `json:"exited"`
	EID        int64     `json:"eid"`
	HitCount   int64     `json:"hit_count"`
	Techniques []string  `json:"techniques"`
	Tactics    []string  `json:"tactics"`
	Severity   string    `json:"severity"`
	// Activity is what the process did (process_tree's activity column):
	// JSON by kind of {count, items: [{time, summary, eid, techniques,
	// severity}]}, "" for none.
	Activity string    `json:"activity,omitempty"`
	Reported time.Time `json:"-"`
}

// IncidentFilter selects incidents. By TimeEvent, an incident matches
// Since/Until when it overlaps them: last seen at or after Since, first seen
// before Until; by TimeDetected, when it was detected in [Since, Until).
type IncidentFilter struct {
	HostIDs       []string
	IncidentIDs   []string
	Since, Until  time.Time // zero: no bound
	By            TimeField
	MinScore      float64
	Limit, Offset int
}

// IncidentHit is one hit of an incident with the detections the host
// reported for it (one per technique; none when the hit never arrived as
// a detection).
type IncidentHit struct {
	HitID      string      `json:"hit_id"`
	Detections []Detection `json:"detections"`
}

// TableColumn is one column of a table a host reported.
type TableColumn struct {
	Name string `json:"name"`
	// Type is the declared type as the host wrote it (TEXT, BIGINT,
	// UNSIGNED BIGINT, …); empty when it declared none.
	Type string `json:"type,omitempty"`
	// Hidden: osquery's HIDDEN columns (not in SELECT *, used as
	// constraints).
	Hidden bool `json:"hidden,omitempty"`
}

// HostTable is one table a host reported having.
type HostTable struct {
	Name    string        `json:"name"`
	Columns []TableColumn `json:"columns"`
}

// HostSchema is what a host answered to the server's schema probe: the
// tables its SQL engine serves.
type HostSchema struct {
	HostID string
	// Version is the host's osquery and Quarry versions when it answered:
	// the server probes again when they change.
	Version    string
	ReportedAt time.Time
	// Error is the host's message when the probe failed ("schema
	// unavailable"); Tables is then empty.
	Error  string
	Tables []HostTable
}

// FleetTable is a table some enrolled hosts reported, over all of them.
type FleetTable struct {
	Name string `json:"name"`
	// Columns are every column any host reported for the table, in the
	// order the first definition (by host count) gave them, then the
	// others' additions.
	Columns []TableColumn `json:"columns"`
	// Hosts is how many hosts reported the table.
	Hosts int `json:"hosts"`
	// Platforms are those hosts' platform families (linux, darwin,
	// windows…), sorted.
	Platforms []string `json:"platforms"`
}

// IntelSet is one source's threat intelligence as an analyst uploaded it (a
// STIX 2.1 bundle, a MISP event export or a plain list), which the fleet
// distributes to its agents. Version changes whenever the set does: an
// agent that has it is not sent it again.
type IntelSet struct {
	Source string `json:"source"`
	// Format is stix, misp or plain (detections/intel.Format).
	Format string `json:"format"`
	// Confidence (0 for the feed's own or the default) and TTLSeconds (0:
	// the feed's validity) are the load options agents apply.
	Confidence int   `json:"confidence"`
	TTLSeconds int64 `json:"ttl_seconds"`
	// Indicators is how many indicators the server read from it.
	Indicators int       `json:"indicators"`
	Version    string    `json:"version"`
	Updated    time.Time `json:"updated"`
	// Data is the set as uploaded (base64 in JSON); lists leave it out.
	Data []byte `json:"data,omitempty"`
}
