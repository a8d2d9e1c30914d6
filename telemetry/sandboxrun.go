package telemetry

import (
	"slices"
	"strings"
	"time"
)

// SandboxRun is one run of a sample in a sandbox: a detonation by Quarry
// (quarry detonate) or an imported sandbox report (CAPE, Cuckoo). Its events
// are ordinary Events with Source SourceSandbox and RunID set to ID, so the
// same tables and hunts serve them; the run itself is the sandbox_runs row.
//
// Its JSON (the fleet's analyst API) leaves Report out: the fleet receives
// the report's parts decoded (SandboxFile, SandboxDestination, SandboxRule
// and the tree), not the origin's own summary.
type SandboxRun struct {
	ID     string `json:"run_id"` // unique run id (a UUID for detonations; the report's task id prefixed by its origin for imports)
	Origin string `json:"origin"` // "detonate", "cape" or "cuckoo"
	Host   string `json:"host"`   // host_identifier of the machine the run was made or imported on

	Sample string `json:"sample"` // the sample's file name
	SHA256 string `json:"sha256"`
	SHA1   string `json:"sha1"`
	MD5    string `json:"md5"`
	Size   int64  `json:"size"`

	Started  time.Time     `json:"started"`     // UTC
	Duration time.Duration `json:"duration_ns"` // from start until the sandbox ended the run

	// Verdict is "malicious", "suspicious" or "clean"; Score is 0–10.
	Verdict string  `json:"verdict"`
	Score   float64 `json:"score"`
	// Techniques and Tactics are the ATT&CK IDs seen, techniques sorted,
	// tactics in matrix order.
	Techniques []string `json:"techniques"`
	Tactics    []string `json:"tactics"`

	// StoredAt is when this store took the run (a detonation's end, a
	// report's import): what the fleet's pack query selects by, so an
	// imported report of an old run still reaches the fleet.
	StoredAt time.Time `json:"stored_at"`

	// Report is the run's report as JSON: a SandboxReport (the tree, files,
	// network destinations and rules, one shape whatever the origin), with
	// what only its origin has beside them.
	Report []byte `json:"-"`
}

// SandboxReport is what every run's stored report holds, whatever its
// origin: a detonation's (sandbox.Report, which adds the sample, verdict,
// techniques by tactic and how the sandbox ran) or an imported CAPE or
// Cuckoo report's (which adds the other sandbox's task, machine and
// sample). Readers of a run (sandbox_runs, the fleet) read this part.
type SandboxReport struct {
	Tree    []*SandboxProcess    `json:"tree"`
	Files   []SandboxFile        `json:"files"`
	Network []SandboxDestination `json:"network"`
	Rules   []SandboxRule        `json:"rules"`
	// Events is how many events of the run were stored.
	Events int `json:"events"`
}

// SandboxProcess is a process of a run's tree.
type SandboxProcess struct {
	PID  int64     `json:"pid"`
	PPID int64     `json:"ppid"`
	Time time.Time `json:"time"` // when it started; zero when unknown
	// Name is the process's image name where the report gives no path.
	Name       string   `json:"name,omitempty"`
	Path       string   `json:"path"`
	Cmdline    string   `json:"cmdline"`
	Techniques []string `json:"techniques,omitempty"`
	// Activity counts the process's other events by category.
	Activity map[string]int    `json:"activity,omitempty"`
	Children []*SandboxProcess `json:"children,omitempty"`
	// Key is the process's process_key in the event store.
	Key string `json:"process_key,omitempty"`
}

// SandboxFile is a file a run wrote, changed, deleted or dropped.
type SandboxFile struct {
	Path    string   `json:"path"`
	Actions []string `json:"actions"`
	Process string   `json:"process"`
	// SHA256 and Size are those of the file as the run left it; empty when
	// it was deleted or lay outside the throwaway directories.
	SHA256 string `json:"sha256,omitempty"`
	Size   int64  `json:"size,omitempty"`
}

// SandboxDestination is a place a run tried to reach.
type SandboxDestination struct {
	Kind    string `json:"kind"` // connect, dns (imports also: host, domain, http, tcp, udp)
	Dest    string `json:"dest"` // ip:port, a DNS name, a URL or a flow
	Process string `json:"process"`
	// Answers are a DNS lookup's answers, where the report gives them.
	Answers []string `json:"answers,omitempty"`
	// Sink is what a detonation's network sink recorded of it.
	Sink []SandboxSinkRecord `json:"sink,omitempty"`
}

// SandboxSinkRecord is one request a detonation's network sink answered.
type SandboxSinkRecord struct {
	Time     time.Time `json:"time"`
	Protocol string    `json:"protocol"` // dns, tcp, http, tls
	Dest     string    `json:"dest"`     // the address the sample reached, ip:port
	Source   string    `json:"source"`   // the sample's end, ip:port
	Query    string    `json:"query,omitempty"`
	Request  string    `json:"request,omitempty"` // HTTP request line
	Host     string    `json:"host,omitempty"`    // HTTP Host header
	SNI      string    `json:"sni,omitempty"`     // TLS server name
	Data     string    `json:"data,omitempty"`    // the first bytes of other TCP, quoted
}

// SandboxRule is a rule (or an imported report's signature) that fired in
// a run, with what an analyst needs to act on it.
type SandboxRule struct {
	ID              string   `json:"id"`
	Title           string   `json:"title"`
	Source          string   `json:"source"` // builtin, sigma, custom, correlation; the origin for a report's signature
	Author          string   `json:"author,omitempty"`
	Licence         string   `json:"licence,omitempty"` // DRL 1.1 for SigmaHQ rules
	Severity        string   `json:"severity"`
	Confidence      string   `json:"confidence"`
	Description     string   `json:"description"`
	Recommendations string   `json:"recommendations"`
	Techniques      []string `json:"techniques"`
	// Families are the malware families an imported report's signature
	// names.
	Families []string `json:"families,omitempty"`
	Hits     int      `json:"hits"`
}

// SandboxRules gathers the rules of a run's hits (a SandboxRule each,
// with its techniques and how many hits it had). The zero value is ready.
type SandboxRules struct {
	byID map[string]*SandboxRule
	hits map[string]bool
}

// Add counts hit (one row of it: a hit of a rule naming two techniques is
// two rows sharing HitID) for its rule.
func (s *SandboxRules) Add(h *Hit) {
	if s.byID == nil {
		s.byID, s.hits = map[string]*SandboxRule{}, map[string]bool{}
	}
	r := s.byID[h.RuleID]
	if r == nil {
		r = &SandboxRule{ID: h.RuleID, Title: h.RuleTitle, Source: h.RuleSource, Author: h.RuleAuthor, Severity: h.Severity,
			Confidence: h.Confidence, Description: h.Description, Recommendations: h.Recommendations}
		if h.RuleSource == "sigma" {
			r.Licence = "DRL 1.1 (Detection Rule License)"
		}
		s.byID[h.RuleID] = r
	}
	if h.TechniqueID != "" && !slices.Contains(r.Techniques, h.TechniqueID) {
		r.Techniques = append(r.Techniques, h.TechniqueID)
	}
	if !s.hits[h.HitID] {
		s.hits[h.HitID] = true
		r.Hits++
	}
}

// List returns the rules, the most severe first, then by ID; each rule's
// techniques sorted.
func (s *SandboxRules) List() []SandboxRule {
	rank := map[string]int{"critical": 5, "high": 4, "medium": 3, "low": 2, "informational": 1}
	out := make([]SandboxRule, 0, len(s.byID))
	for _, r := range s.byID {
		slices.Sort(r.Techniques)
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b SandboxRule) int {
		if ra, rb := rank[a.Severity], rank[b.Severity]; ra != rb {
			return rb - ra
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}
