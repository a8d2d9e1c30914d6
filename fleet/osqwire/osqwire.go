// Package osqwire is osquery's TLS remote API as JSON messages, one type
// per message, shared by Quarry's agent (and quarry-bench) and the fleet
// server: enroll, config, log, distributed read and write, with the paths
// they are posted to, and Quarry's additions (the quarry_deadlines of a
// distributed read, the intel fetch of intel.go). Messages carrying rows
// are generic over how a row is held: values when written, the JSON as
// sent when read.
package osqwire

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// Paths of osquery's TLS remote API, relative to the fleet URL.
const (
	PathEnroll          = "/api/v1/osquery/enroll"
	PathConfig          = "/api/v1/osquery/config"
	PathLog             = "/api/v1/osquery/log"
	PathDistributedRead = "/api/v1/osquery/distributed/read"
	PathDistWrite       = "/api/v1/osquery/distributed/write"
)

// EnrollRequest is osquery's enroll body (--enroll_tls_endpoint). Quarry's
// agent gives its version as host_details.quarry_info.version.
type EnrollRequest struct {
	EnrollSecret   string `json:"enroll_secret"`
	HostIdentifier string `json:"host_identifier"`
	PlatformType   string `json:"platform_type"`
	// HostDetails are rows of osquery's tables by table: os_version,
	// osquery_info, system_info, platform_info (and quarry_info).
	HostDetails map[string]Details `json:"host_details"`
	// QuarryVersion is where Quarry agents that sent no quarry_info gave
	// their version.
	QuarryVersion string `json:"quarry_version,omitempty"`
}

// Details is one table row of EnrollRequest.HostDetails, column to value.
// osquery sends the values as strings; a number, boolean or other JSON
// value reads as Text renders it.
type Details map[string]string

// UnmarshalJSON implements json.Unmarshaler: the row must be a JSON object
// (or null).
func (d *Details) UnmarshalJSON(b []byte) error {
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	if m == nil {
		return nil
	}
	*d = make(Details, len(m))
	for k, v := range m {
		(*d)[k] = Text(v)
	}
	return nil
}

// Text renders a decoded JSON value as osquery prints it: a string as it
// is, a number in decimal, a boolean as 1 or 0, null as "", anything else
// as its JSON.
func Text(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case json.Number:
		return x.String()
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		if x {
			return "1"
		}
		return "0"
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

// EnrollResponse carries the node key the agent presents from then on.
type EnrollResponse struct {
	NodeKey     string `json:"node_key"`
	NodeInvalid bool   `json:"node_invalid"`
}

// NodeRequest is the body of every request after enrollment.
type NodeRequest struct {
	NodeKey string `json:"node_key"`
}

// ConfigResponse is osquery's configuration as the server sends it and the
// agent reads it: the schedule, packs (each a Pack, kept as JSON) and
// options. node_invalid asks for re-enrollment.
type ConfigResponse struct {
	Options     map[string]any             `json:"options"`
	Schedule    map[string]ScheduledQuery  `json:"schedule"`
	Packs       map[string]json.RawMessage `json:"packs"`
	NodeInvalid bool                       `json:"node_invalid"`
}

// Pack is an osquery pack inside the config.
type Pack struct {
	Platform string                    `json:"platform,omitempty"`
	Version  string                    `json:"version,omitempty"`
	Shard    int                       `json:"shard,omitempty"`
	Queries  map[string]ScheduledQuery `json:"queries"`
}

// ScheduledQuery is one query of the schedule or of a pack.
type ScheduledQuery struct {
	Query    string `json:"query"`
	Interval int    `json:"interval"`
	Platform string `json:"platform,omitempty"`
	Snapshot bool   `json:"snapshot,omitempty"`
	// Removed is osquery's "removed" flag: false logs only added rows.
	Removed *bool `json:"removed,omitempty"`
}

// LogRequest sends result or status logs (log_type "result" or "status");
// each data item is a JSON object (or, from some clients, a string holding
// one).
type LogRequest struct {
	NodeKey string            `json:"node_key"`
	LogType string            `json:"log_type"`
	Data    []json.RawMessage `json:"data"`
}

// Log types.
const (
	LogResult = "result"
	LogStatus = "status"
)

// NodeResponse is the reply to config, log and distributed write requests.
type NodeResponse struct {
	NodeInvalid bool `json:"node_invalid"`
}

// DistributedReadResponse lists live queries for this host by id.
// Deadlines is Quarry's addition (osqueryd ignores it): each query's hunt
// deadline in UNIX seconds, after which an answer no longer counts.
type DistributedReadResponse struct {
	Queries     map[string]string `json:"queries"`
	Discovery   map[string]string `json:"discovery,omitempty"`
	Deadlines   map[string]int64  `json:"quarry_deadlines,omitempty"`
	NodeInvalid bool              `json:"node_invalid,omitempty"`
}

// DistributedWriteRequest answers live queries: rows per id, a status per
// id (0 success, else failure) and, on failure, a message per id. Rows is
// how the rows of one query are held: []map[string]string when writing
// them, json.RawMessage when reading them as sent (osquery sends "" for a
// query that failed).
type DistributedWriteRequest[Rows any] struct {
	NodeKey  string                `json:"node_key"`
	Queries  map[string]Rows       `json:"queries"`
	Statuses map[string]Int        `json:"statuses"`
	Messages map[string]string     `json:"messages,omitempty"`
	Stats    map[string]QueryStats `json:"stats,omitempty"`
}

// QueryStats is osquery's per-query performance record of a live query.
type QueryStats struct {
	WallTimeMs int64 `json:"wall_time_ms"`
	UserTime   int64 `json:"user_time"`
	SystemTime int64 `json:"system_time"`
	Memory     int64 `json:"memory"`
}

// ResultLog is one result log in any of osquery's forms: batched
// differential (diffResults), snapshot, or one row per log (event format:
// columns and action; --logger_event_type). Row is how a row is held:
// map[string]string when writing (Quarry's agent, with
// --logger_event_type=false), json.RawMessage when reading rows as sent
// (osquery's numerics send numbers, and the server stores rows as they
// came); Decorations are held the same way.
type ResultLog[Row any] struct {
	Name           string            `json:"name"`
	HostIdentifier string            `json:"hostIdentifier"`
	CalendarTime   string            `json:"calendarTime"`
	UnixTime       Int               `json:"unixTime"`
	Epoch          Int               `json:"epoch"`
	Counter        Int               `json:"counter"`
	Numerics       bool              `json:"numerics"`
	Decorations    Row               `json:"decorations,omitempty"`
	DiffResults    *DiffResults[Row] `json:"diffResults,omitempty"`
	Snapshot       []Row             `json:"snapshot,omitempty"`
	Columns        Row               `json:"columns,omitempty"`
	Action         string            `json:"action,omitempty"`
}

// DiffResults holds the rows added and removed since the query's last run.
type DiffResults[Row any] struct {
	Added   []Row `json:"added"`
	Removed []Row `json:"removed"`
}

// StatusLog is one osquery status log line.
type StatusLog struct {
	HostIdentifier string `json:"hostIdentifier"`
	CalendarTime   string `json:"calendarTime"`
	UnixTime       Int    `json:"unixTime"`
	Severity       Int    `json:"severity"`
	Filename       string `json:"filename"`
	Line           Int    `json:"line"`
	Message        string `json:"message"`
	Version        string `json:"version"`
}

// Status log severities (glog's).
const (
	SeverityInfo    = 0
	SeverityWarning = 1
	SeverityError   = 2
)

// CalendarTime formats a UNIX time as osquery's calendarTime ("Mon Jan  2
// 15:04:05 2006 UTC").
func CalendarTime(unix int64) string {
	return time.Unix(unix, 0).UTC().Format("Mon Jan _2 15:04:05 2006 UTC")
}

// Int reads a JSON number or a string holding one (osquery has sent both);
// anything else reads as 0. It encodes as a number.
type Int int64

// UnmarshalJSON implements json.Unmarshaler.
func (f *Int) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		*f = Int(v)
	} else if v, err := strconv.ParseFloat(s, 64); err == nil {
		*f = Int(v)
	}
	return nil
}
