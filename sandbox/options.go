package sandbox

import (
	"errors"
	"net/netip"
	"time"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

// The types and names in this file build on every system, so that stored
// runs can be listed and shown anywhere; running a sample is Linux-only
// (Supported).

// ErrUnsupported is what Detonate and Supported return on a system other
// than Linux.
var ErrUnsupported = errors.New("sandbox: running a sample needs Linux (bubblewrap, namespaces, cgroups, seccomp, eBPF)")

// Network choices for Options.Network.
const (
	NetworkNone = "none" // a network namespace with loopback only
	NetworkSink = "sink" // DNS and TCP answered and recorded by the sink
)

// Options configure a run.
type Options struct {
	// Args are passed to the sample.
	Args []string
	// Timeout ends the run, killing every process of it (default 60 s).
	Timeout time.Duration
	// Network is NetworkNone (default) or NetworkSink.
	Network string
	Limits  Limits
	// Bwrap is the bubblewrap binary (default: bwrap on PATH).
	Bwrap string
}

// Limits bound what a run may use.
type Limits struct {
	// MemoryBytes is the memory limit (default 512 MiB).
	MemoryBytes int64
	// Pids bounds the tasks alive at once (default 256).
	Pids int
	// CPUs is the CPU bandwidth in cores (default 1).
	CPUs float64
}

func (l *Limits) defaults() {
	if l.MemoryBytes <= 0 {
		l.MemoryBytes = 512 << 20
	}
	if l.Pids <= 0 {
		l.Pids = 256
	}
	if l.CPUs <= 0 {
		l.CPUs = 1
	}
}

// Home is the sample's home directory inside the sandbox; the sample runs
// as SandboxUID there.
const (
	Home       = "/home/sandbox"
	SandboxUID = 1000
	// HostUID is the uid (and gid) the sandbox runs as on the host:
	// nobody.
	HostUID = 65534
)

// SamplePath is where the sample is inside the sandbox.
const SamplePath = "/tmp/sample"

// Result is what a run did, as the sandbox saw it.
type Result struct {
	Started  time.Time
	Duration time.Duration
	ExitCode int  // the sample's; -1 when it was killed
	TimedOut bool // ended by the timeout
	// Limits lists the cgroup limits applied, and NotLimited those that
	// could not be.
	Limits, NotLimited []string
	// Files are the files left in the throwaway /tmp and home, hashed.
	Files []File
	// Sink is what the network sink recorded (NetworkSink), at most
	// MaxSinkRecords; SinkDropped counts the requests past that.
	Sink        []SinkRecord
	SinkDropped int
	// Stderr is the tail of bwrap's own error output, when it failed.
	Stderr string
}

// File is a file the sample left in its writable directories.
type File struct {
	Path   string // as the sample saw it
	Size   int64
	SHA256 string
}

// SinkRecord is one thing the sample sent to the sink.
type SinkRecord = telemetry.SandboxSinkRecord

// SinkAddr is what the sink's DNS answers for every name (A records; AAAA
// queries get no records, so clients use IPv4); any IPv4 destination, and
// any IPv6 one where the kernel has IPv6, reaches the sink, this one
// included.
var SinkAddr = netip.MustParseAddr("198.18.0.1")

// SinkPorts are the TCP ports the sink accepts on; a connection to another
// port is refused (and still seen by the collectors).
var SinkPorts = []int{21, 22, 23, 25, 80, 443, 444, 1337, 4444, 5555, 6667, 8000, 8080, 8443, 8888, 9001, 9999, 31337}

// OriginDetonate is SandboxRun.Origin of a run made here.
const OriginDetonate = "detonate"

// DetonateOptions configure Detonate.
type DetonateOptions struct {
	Options
	// Store receives the run's events, hits and the run itself.
	Store *eventstore.Store
	// Rules are the detection rules (builtin, SigmaHQ, custom) the events
	// are matched with; none stores the events undetected.
	Rules []*detections.Rule
	KB    *attack.KB
	// Host is the host_identifier of this machine.
	Host string
	// Settle is how long the collectors are read after the sandbox ended
	// (what the kernel recorded last is still in the ring buffer; default
	// 500 ms).
	Settle time.Duration
}
