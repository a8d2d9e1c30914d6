// Package collect starts Quarry's live process telemetry: the eBPF
// collector when the kernel allows it, else the netlink process connector,
// with lineage (parent path and command line) filled in.
//
// Live collection is Linux-only: elsewhere Start fails with ErrUnsupported
// (recordings are imported instead: quarry import).
package collect

import (
	"errors"
	"fmt"
	"time"

	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/lineage"
)

// Source choices for Options.Source.
const (
	SourceAuto   = "auto"
	SourceEBPF   = string(telemetry.SourceEBPF)
	SourceCnProc = string(telemetry.SourceCnProc)
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
}

// Stats counts what a Collector has seen.
type Stats struct {
	Source    telemetry.Source
	Events    uint64 // events delivered to the callback
	Drops     uint64 // eBPF records lost to a full ring buffer
	Lost      uint64 // process connector overruns (each may lose many events)
	Partial   uint64 // exec events whose process was gone before it was read
	Malformed uint64 // records or messages that could not be decoded
	Seeded    int    // processes read from /proc at start
	// RateLimited counts the activity records the per-process rate limits
	// held back in the kernel; Filtered the file events the path filter
	// dropped.
	RateLimited, Filtered uint64
	// NotCaptured lists what is not captured, each as "capture: why": the
	// eBPF activity captures that could not load, or every one of them
	// under the process connector.
	NotCaptured []string
}

// ErrUnsupported is what Start returns on a system other than Linux: the
// eBPF collector and the process connector are Linux's.
var ErrUnsupported = errors.New("collect: live telemetry needs Linux (eBPF or the netlink process connector); import recordings instead (quarry import)")

// check validates opts on every system.
func (o Options) check() error {
	switch o.Source {
	case "", SourceAuto, SourceEBPF, SourceCnProc:
		return nil
	}
	return fmt.Errorf("collect: unknown source %q (want auto, ebpf or cnproc)", o.Source)
}
