// Package telemetry holds Quarry's one normalized event type and everything
// that produces or keeps events: the live collectors (eBPF, the netlink
// process connector), the importers of recordings (Sysmon EVTX and JSON,
// Security 4688, auditd, Sysmon for Linux), process lineage and the event
// store. Nothing downstream knows which source filled an Event.
package telemetry

import (
	"strings"
	"time"
)

// Kind says what an event records.
type Kind uint8

// Event kinds.
const (
	// KindOther is any event that is not a process start or exit: a Sysmon
	// file, registry, network, image-load… event. Its fields are in Fields.
	KindOther Kind = iota
	// KindExec is a process start (execve; Sysmon EventID 1; Security 4688).
	KindExec
	// KindExit is a process exit (Sysmon EventID 5; Security 4689).
	KindExit
)

// String returns osquery's syscall name for process events ("execve",
// "exit") and "other" otherwise.
func (k Kind) String() string {
	switch k {
	case KindExec:
		return "execve"
	case KindExit:
		return "exit"
	}
	return "other"
}

// Source names where an event came from; it is the process_events.source
// column.
type Source string

// The sources Quarry reads.
const (
	SourceEBPF        Source = "ebpf"
	SourceCnProc      Source = "cnproc"
	SourceSysmon      Source = "sysmon"
	SourceSecurity    Source = "security4688"
	SourceAuditd      Source = "auditd"
	SourceSysmonLinux Source = "sysmon_linux"
	// SourceWindows is any other Windows event log channel (PowerShell,
	// System, Security events other than process start and exit…).
	SourceWindows Source = "windows"
	// SourceSandbox is a sandbox run: a sample detonated by Quarry or an
	// imported sandbox report (CAPE, Cuckoo); such events carry RunID.
	SourceSandbox Source = "sandbox"
)

// Unknown marks an unknown numeric id (uid, gid, auid, pid…).
const Unknown int64 = -1

// Event is one normalized record. Process fields are typed; whatever else a
// source records (a Sysmon event's EventData, an audit record's fields) is
// kept in Fields under the source's own names, so detections written against
// those names (Sigma's TargetFilename, DestinationIp…) still find them.
//
// Numeric ids are Unknown (-1) when the source does not record them.
type Event struct {
	Time   time.Time // when the event happened (UTC)
	Kind   Kind
	Source Source
	Host   string // host_identifier: the host the event happened on

	// Category is the Sigma log source category when known:
	// process_creation, file_event, registry_set, network_connection…
	Category string
	// EventID and Channel identify a Windows event (Sysmon EventID 1,
	// Security 4688); zero and empty for Linux sources.
	EventID int
	Channel string
	// RecordID is the record's number in its source (EVTX record id, audit
	// serial, line number), for reporting and de-duplication.
	RecordID int64

	PID     int64
	PPID    int64
	Path    string // executable path (Image)
	Cmdline string // full command line, arguments joined by spaces
	Args    []string
	Cwd     string
	Comm    string // kernel task name, Linux only

	UID, EUID, GID, EGID int64
	AUID                 int64  // login uid (Linux loginuid; audit auid)
	Username             string // DOMAIN\user on Windows, the uid's name on Linux
	LogonID              string // Windows logon id

	ParentPath    string
	ParentCmdline string
	// StartTime is when the process started, for telling reused pids apart
	// (Linux: boot-relative nanoseconds turned into wall time).
	StartTime  time.Time
	ExitCode   int64 // exit status; for a signal death, 128+signal
	ExitSignal int   // the signal that ended the process, 0 if none
	CgroupID   uint64

	ProcessGUID string
	ParentGUID  string
	// ProcessKey is the identity of the process the event belongs to (the
	// process started, for a start event; the acting process otherwise), one
	// per real process whatever the sources that recorded it. The event store
	// assigns it when the event is stored; empty before that.
	ProcessKey       string
	IntegrityLevel   string
	OriginalFileName string
	Hashes           string // Sysmon's "SHA256=…,MD5=…" form

	// Partial marks an event whose process was gone before it could be fully
	// read (a short-lived process seen through the process connector).
	Partial bool
	// Truncated marks an event one of whose values was cut to the importer's
	// bound (command lines at 32 KiB, as live argv).
	Truncated bool

	// RunID is the sandbox run the event was recorded in (SandboxRun.ID);
	// empty outside a sandbox.
	RunID string

	// Fields holds the source's other fields by their own names, in the
	// source's order.
	Fields Fields
}

// Field returns a source field by name, "" when absent.
func (e *Event) Field(name string) string {
	return e.Fields.Value(name)
}

// Clone returns a copy of e whose strings are its own: events read with
// importers.NextInto share a buffer the next read overwrites, so what is
// kept beyond it is cloned.
func (e *Event) Clone() *Event {
	c := *e
	for _, p := range []*string{&c.Host, &c.Category, &c.Channel, &c.Path, &c.Cmdline, &c.Cwd, &c.Comm,
		&c.Username, &c.LogonID, &c.ParentPath, &c.ParentCmdline, &c.ProcessGUID, &c.ParentGUID, &c.ProcessKey,
		&c.IntegrityLevel, &c.OriginalFileName, &c.Hashes} {
		*p = strings.Clone(*p)
	}
	c.Source = Source(strings.Clone(string(c.Source)))
	if e.Args != nil {
		c.Args = make([]string, len(e.Args))
		for i, a := range e.Args {
			c.Args[i] = strings.Clone(a)
		}
	}
	c.Fields = e.Fields.Clone()
	return &c
}

// NewEvent returns an event whose numeric ids are Unknown.
func NewEvent(kind Kind, src Source) Event {
	return Event{
		Kind: kind, Source: src,
		PID: Unknown, PPID: Unknown,
		UID: Unknown, EUID: Unknown, GID: Unknown, EGID: Unknown, AUID: Unknown,
		ExitCode: Unknown,
	}
}

// Reader yields events one at a time. Next returns io.EOF after the last one.
// A malformed record does not end the stream: Next returns a *RecordError for
// it and the following call goes on with the next record.
type Reader interface {
	Next() (Event, error)
	Close() error
}
