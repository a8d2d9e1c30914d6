package telemetry

import "time"

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

	// Report is the run's full summary as JSON (tree, files dropped, network
	// destinations, rules that fired), as the origin produced it.
	Report []byte `json:"-"`
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
	Kind    string `json:"kind"` // connect, dns (imports: host, domain, http, tcp, udp)
	Dest    string `json:"dest"` // ip:port, a DNS name, a URL or a flow
	Process string `json:"process"`
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
	Hits            int      `json:"hits"`
}
