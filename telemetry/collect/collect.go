// Package collect starts Quarry's live process telemetry: the eBPF
// collector when the kernel allows it, else the netlink process connector,
// with lineage (parent path and command line) filled in; and activity
// (network, file, process access, module loads) from eBPF, else from the
// kernel audit socket (telemetry/audit).
//
// Live collection is Linux-only: elsewhere Start fails with ErrUnsupported
// (recordings are imported instead: quarry import).
package collect

import (
	"errors"
	"fmt"
	"time"

	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/audit"
	"github.com/quarry-sec/quarry/telemetry/lineage"
)

// Source choices for Options.Source.
const (
	SourceAuto   = "auto"
	SourceEBPF   = string(telemetry.SourceEBPF)
	SourceCnProc = string(telemetry.SourceCnProc)
)

// Activity choices for Options.Activity.
const (
	// ActivityAuto captures activity with eBPF and, for what eBPF cannot
	// capture here (BPF did not load, or an activity program was refused),
	// with the kernel audit socket.
	ActivityAuto = "auto"
	// ActivityEBPF uses eBPF only.
	ActivityEBPF = "ebpf"
	// ActivityAudit forces the audit fallback for the captures it serves
	// (audit.Captures); eBPF keeps the others (dns, memfd, privilege).
	ActivityAudit = "audit"
)

// Options configure Start.
type Options struct {
	// Source is SourceAuto ("" too): eBPF, falling back to the process
	// connector when BPF cannot load; or SourceEBPF or SourceCnProc to
	// force one (Start fails when it cannot start).
	Source string
	// DrainInterval is how often the eBPF ring buffer is read; zero means
	// ebpf.DefaultDrainInterval.
	DrainInterval time.Duration
	// Host fills Event.Host.
	Host string
	// Lineage configures the process cache.
	Lineage lineage.Options

	// Disable, FileRate, FileBurst, IncludePaths, ExcludePaths and DNSPort
	// configure the eBPF activity capture (network, DNS, file, process
	// access, module, memfd and privilege events); see ebpf.Options.
	Disable                    []string
	FileRate                   float64
	FileBurst                  int
	IncludePaths, ExcludePaths []string
	DNSPort                    uint16

	// Activity is ActivityAuto ("" too), ActivityEBPF or ActivityAudit
	// (Start fails when the audit fallback cannot start).
	Activity string
}

// Stats counts what a Collector has seen.
type Stats struct {
	Source    telemetry.Source
	Events    uint64 // events delivered to the callback
	Drops     uint64 // eBPF records lost to a full ring buffer; audit records lost (Audit)
	Lost      uint64 // process connector overruns (each may lose many events)
	Partial   uint64 // exec events whose process was gone before it was read
	Malformed uint64 // records or messages that could not be decoded
	Seeded    int    // processes read from /proc at start
	// RateLimited counts the activity records the per-process rate limits
	// held back in the kernel; Filtered the file events the path filter
	// dropped.
	RateLimited, Filtered uint64
	// NotCaptured lists what is not captured, each as "capture: why": the
	// eBPF activity captures that could not load (or every one of them
	// under the process connector) and that the audit fallback does not
	// serve.
	NotCaptured []string
	// Audit is what the audit fallback counted (zero when it is not
	// running); its Lost, QueueFull and Overruns are in Drops too.
	Audit audit.Stats
	// AuditCaptures lists the captures the audit fallback serves, empty
	// when it is not running.
	AuditCaptures []string
}

// SourceName is the source as a status line shows it: "ebpf", "cnproc",
// with "+audit" when the audit fallback captures activity.
func (s Stats) SourceName() string {
	if len(s.AuditCaptures) > 0 {
		return string(s.Source) + "+audit"
	}
	return string(s.Source)
}

// ErrUnsupported is what Start returns on a system other than Linux: the
// eBPF collector, the process connector and the audit socket are Linux's.
var ErrUnsupported = errors.New("collect: live telemetry needs Linux (eBPF, the netlink process connector or audit); import recordings instead (quarry import)")

// check validates opts on every system.
func (o Options) check() error {
	switch o.Source {
	case "", SourceAuto, SourceEBPF, SourceCnProc:
	default:
		return fmt.Errorf("collect: unknown source %q (want auto, ebpf or cnproc)", o.Source)
	}
	switch o.Activity {
	case "", ActivityAuto, ActivityEBPF, ActivityAudit:
	default:
		return fmt.Errorf("collect: unknown activity source %q (want auto, ebpf or audit)", o.Activity)
	}
	return nil
}
