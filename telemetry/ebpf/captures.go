package ebpf

// The names in this file build on every system, so that flags and reports
// can name the captures; the collector itself is Linux-only.

// The activity captures beyond process start and exit, as named in
// Options.Disable and Stats.NotCaptured.
const (
	CaptureNetwork       = "network"
	CaptureDNS           = "dns"
	CaptureFile          = "file"
	CaptureProcessAccess = "process_access"
	CaptureDriverLoad    = "driver_load"
	CaptureMemfd         = "memfd"
	CapturePrivilege     = "privilege"
)

// Captures lists every activity capture, in reporting order.
var Captures = []string{CaptureNetwork, CaptureDNS, CaptureFile, CaptureProcessAccess, CaptureDriverLoad,
	CaptureMemfd, CapturePrivilege}

// DefaultExcludePaths are the path prefixes whose file events are dropped
// by default: pseudo-files and per-user runtime directories.
var DefaultExcludePaths = []string{"/proc/", "/sys/", "/dev/", "/run/user/"}
