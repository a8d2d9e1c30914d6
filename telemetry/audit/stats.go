package audit

import "github.com/quarry-sec/quarry/telemetry/ebpf"

// The names in this file build on every system, so that collect's Stats
// can carry them; the collector itself is Linux-only.

// The captures the audit fallback serves: eBPF's of the same events, so
// that collect starts the fallback for exactly what eBPF did not capture.
const (
	CaptureNetwork       = ebpf.CaptureNetwork
	CaptureFile          = ebpf.CaptureFile
	CaptureProcessAccess = ebpf.CaptureProcessAccess
	CaptureDriverLoad    = ebpf.CaptureDriverLoad
)

// Captures lists the captures the audit fallback can serve.
var Captures = []string{CaptureNetwork, CaptureFile, CaptureProcessAccess, CaptureDriverLoad}

// Stats counts what a Collector has seen.
type Stats struct {
	Events uint64 // events delivered
	// Lost is the kernel's audit lost counter's growth since Start: records
	// dropped because the backlog was full (or the rate limit hit).
	Lost uint64
	// QueueFull counts datagrams dropped because the decoder fell behind;
	// Overruns the times the socket's receive buffer overflowed.
	QueueFull, Overruns uint64
	Malformed           uint64 // records that could not be decoded
	Rules               int    // rules added
	// StaleRemoved counts the rules keyed RuleKey that a collector killed
	// before it could remove them had left, removed at start.
	StaleRemoved int
}
