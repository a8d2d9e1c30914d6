package telemetry

import "time"

// SandboxRun is one run of a sample in a sandbox: a detonation by Quarry
// (quarry detonate) or an imported sandbox report (CAPE, Cuckoo). Its events
// are ordinary Events with Source SourceSandbox and RunID set to ID, so the
// same tables and hunts serve them; the run itself is the sandbox_runs row.
type SandboxRun struct {
	ID     string // unique run id (a UUID for detonations; the report's task id prefixed by its origin for imports)
	Origin string // "detonate", "cape" or "cuckoo"
	Host   string // host_identifier of the machine the run was made or imported on

	Sample string // the sample's file name
	SHA256 string
	SHA1   string
	MD5    string
	Size   int64

	Started  time.Time     // UTC
	Duration time.Duration // from start until the sandbox ended the run

	// Verdict is "malicious", "suspicious" or "clean"; Score is 0–10.
	Verdict string
	Score   float64
	// Techniques and Tactics are the ATT&CK IDs seen, techniques sorted,
	// tactics in matrix order.
	Techniques []string
	Tactics    []string

	// Report is the run's full summary as JSON (tree, files dropped, network
	// destinations, rules that fired), as the origin produced it.
	Report []byte
}
