// Package osqwire is osquery's TLS remote API as JSON messages: what
// Quarry's agent sends and the fleet server reads (enroll, config, log,
// distributed read and write), with the paths they are posted to.
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

// EnrollRequest is osquery's enroll body (--enroll_tls_endpoint).
type EnrollRequest struct {
	EnrollSecret   string                       `json:"enroll_secret"`
	HostIdentifier string                       `json:"host_identifier"`
	PlatformType   string                       `json:"platform_type"`
	HostDetails    map[string]map[string]string `json:"host_details"`
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

// ConfigResponse is the part of osquery's configuration the agent uses:
// the schedule, packs and a few options. node_invalid asks for re-enrollment.
type ConfigResponse struct {
	Schedule    map[string]ScheduledQuery  `json:"schedule,omitempty"`
	Packs       map[string]json.RawMessage `json:"packs,omitempty"`
	Options     map[string]any             `json:"options,omitempty"`
	NodeInvalid bool                       `json:"node_invalid,omitempty"`
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

// DistributedWriteRequest answers live queries: rows per id, a status per id
// (0 success, else failure) and, on failure, a message per id.
type DistributedWriteRequest struct {
	NodeKey  string                         `json:"node_key"`
	Queries  map[string][]map[string]string `json:"queries"`
	Statuses map[string]int                 `json:"statuses"`
	Messages map[string]string              `json:"messages,omitempty"`
	Stats    map[string]QueryStats          `json:"stats,omitempty"`
}

// QueryStats is osquery's per-query performance record of a live query.
type QueryStats struct {
	WallTimeMs int64 `json:"wall_time_ms"`
	UserTime   int64 `json:"user_time"`
	SystemTime int64 `json:"system_time"`
	Memory     int64 `json:"memory"`
}

// ResultLog is one differential (or snapshot) result log in osquery's batch
// format (--logger_event_type=false): diffResults for differential queries,
// snapshot for snapshot queries.
type ResultLog struct {
	Name           string              `json:"name"`
	HostIdentifier string              `json:"hostIdentifier"`
	CalendarTime   string              `json:"calendarTime"`
	UnixTime       int64               `json:"unixTime"`
	Epoch          int64               `json:"epoch"`
	Counter        int64               `json:"counter"`
	Numerics       bool                `json:"numerics"`
	Decorations    map[string]string   `json:"decorations,omitempty"`
	DiffResults    *DiffResults        `json:"diffResults,omitempty"`
	Snapshot       []map[string]string `json:"snapshot,omitempty"`
	Action         string              `json:"action,omitempty"`
}

// DiffResults holds the rows added and removed since the query's last run.
type DiffResults struct {
	Added   []map[string]string `json:"added"`
	Removed []map[string]string `json:"removed"`
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
