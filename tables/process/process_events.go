// Package process holds the process telemetry tables: process_events, a
// superset of osquery's table of the same name, over Quarry's event store.
package process

import (
	"context"
	"strings"
	"time"

	"github.com/quarry-sec/quarry/tables"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

// columns are osquery's process_events columns, with osquery's names and
// meanings, then Quarry's. Columns osquery's audit source fills and no Quarry
// source has (mode, env…, owner_*, file times, fs/saved ids) are NULL.
var columns = []tables.Column{
	{Name: "pid", Type: tables.BigInt, Description: "Process (or thread group) ID", Additional: true},
	{Name: "path", Type: tables.Text, Description: "Path of the executed file", Additional: true},
	{Name: "mode", Type: tables.Text, Description: "File mode permissions (not recorded: NULL)"},
	{Name: "cmdline", Type: tables.Text, Description: "Command line arguments (argv), space-separated"},
	{Name: "cmdline_size", Type: tables.BigInt, Description: "Actual size (bytes) of command line arguments"},
	{Name: "env", Type: tables.Text, Description: "Environment variables (not recorded: NULL)"},
	{Name: "env_count", Type: tables.BigInt, Description: "Number of environment variables (not recorded: NULL)"},
	{Name: "env_size", Type: tables.BigInt, Description: "Actual size of environment (not recorded: NULL)"},
	{Name: "cwd", Type: tables.Text, Description: "The process current working directory"},
	{Name: "auid", Type: tables.BigInt, Description: "Audit (login) user ID of the process; -1 unknown"},
	{Name: "uid", Type: tables.BigInt, Description: "User ID at process start; -1 unknown"},
	{Name: "euid", Type: tables.BigInt, Description: "Effective user ID at process start; -1 unknown"},
	{Name: "gid", Type: tables.BigInt, Description: "Group ID at process start; -1 unknown"},
	{Name: "egid", Type: tables.BigInt, Description: "Effective group ID at process start; -1 unknown"},
	{Name: "owner_uid", Type: tables.BigInt, Description: "File owner user ID (not recorded: NULL)"},
	{Name: "owner_gid", Type: tables.BigInt, Description: "File owner group ID (not recorded: NULL)"},
	{Name: "atime", Type: tables.BigInt, Description: "File last access in UNIX time (not recorded: NULL)"},
	{Name: "mtime", Type: tables.BigInt, Description: "File modification in UNIX time (not recorded: NULL)"},
	{Name: "ctime", Type: tables.BigInt, Description: "File last metadata change in UNIX time (not recorded: NULL)"},
	{Name: "btime", Type: tables.BigInt, Description: "File creation in UNIX time (not recorded: NULL)"},
	{Name: "overflows", Type: tables.Text, Description: "List of structures that overflowed (none: NULL)"},
	{Name: "parent", Type: tables.BigInt, Description: "Process parent's PID; -1 unknown"},
	{Name: "time", Type: tables.BigInt, Description: "Time of execution in UNIX time (seconds)", Additional: true},
	{Name: "uptime", Type: tables.BigInt, Description: "Time of execution in system uptime (seconds), for events of this boot of this host; else NULL"},
	{Name: "eid", Type: tables.BigInt, Description: "Event ID: the event's row in Quarry's store", Additional: true},
	{Name: "status", Type: tables.BigInt, Description: "OpenBSM attribute (not recorded: NULL)"},
	{Name: "fsuid", Type: tables.BigInt, Description: "Filesystem user ID (not recorded: NULL)"},
	{Name: "suid", Type: tables.BigInt, Description: "Saved user ID (not recorded: NULL)"},
	{Name: "fsgid", Type: tables.BigInt, Description: "Filesystem group ID (not recorded: NULL)"},
	{Name: "sgid", Type: tables.BigInt, Description: "Saved group ID (not recorded: NULL)"},
	{Name: "syscall", Type: tables.Text, Description: "execve or exit", Additional: true},
	// Quarry's columns.
	{Name: "exit_code", Type: tables.BigInt, Description: "Exit status of an exit event (128+signal for a signal death); NULL otherwise"},
	{Name: "exit_signal", Type: tables.BigInt, Description: "Signal that ended the process, 0 if none; NULL for execve"},
	{Name: "parent_path", Type: tables.Text, Description: "Parent's executable path, kept even after the parent exited"},
	{Name: "parent_cmdline", Type: tables.Text, Description: "Parent's command line, kept even after the parent exited"},
	{Name: "username", Type: tables.Text, Description: "User name (DOMAIN\\user on Windows)"},
	{Name: "host_identifier", Type: tables.Text, Description: "Host the event happened on", Additional: true},
	{Name: "source", Type: tables.Text, Description: "Where the event came from: ebpf, cnproc, sysmon, security4688, auditd, sysmon_linux", Additional: true},
	{Name: "process_guid", Type: tables.Text, Description: "Sysmon ProcessGuid"},
	{Name: "parent_guid", Type: tables.Text, Description: "Sysmon ParentProcessGuid"},
	{Name: "integrity_level", Type: tables.Text, Description: "Windows integrity level (Low, Medium, High, System)"},
	{Name: "original_file_name", Type: tables.Text, Description: "PE OriginalFileName"},
	{Name: "hashes", Type: tables.Text, Description: "Hashes of the image, Sysmon's SHA256=…,MD5=… form"},
	{Name: "partial", Type: tables.Integer, Description: "1 when the process was gone before it could be fully read (cnproc)"},
	{Name: "comm", Type: tables.Text, Description: "Kernel task name (Linux)"},
	{Name: "cgroup_id", Type: tables.BigInt, Description: "cgroup v2 id (Linux)"},
	{Name: "start_time", Type: tables.BigInt, Description: "Process start in UNIX time (seconds)"},
	{Name: "logon_id", Type: tables.Text, Description: "Windows logon id"},
	{Name: "event_id", Type: tables.Integer, Description: "Windows event ID (Sysmon 1/5, Security 4688/4689); 0 on Linux"},
	{Name: "techniques", Type: tables.Text, Description: "ATT&CK technique IDs informational detections tagged the event with"},
	{Name: "truncated", Type: tables.Integer, Description: "1 when a value was cut to its bound on import (command lines at 32 KiB, script text at 32 KiB, other values at 4 KiB)"},
	{Name: "process_key", Type: tables.Text, Description: "Identity of the process started or exited, the same for every event of that process (process_activity lists them)", Additional: true},
	{Name: "run_id", Type: tables.Text, Description: "The sandbox run the event was recorded in (sandbox_runs.run_id); '' outside runs", Additional: true, Hidden: true},
}

// Column positions, in the order of columns (checked by a test).
const (
	cPid = iota
	cPath
	cMode
	cCmdline
	cCmdlineSize
	cEnv
	cEnvCount
	cEnvSize
	cCwd
	cAuid
	cUid
	cEuid
	cGid
	cEgid
	cOwnerUid
	cOwnerGid
	cAtime
	cMtime
	cCtime
	cBtime
	cOverflows
	cParent
	cTime
	cUptime
	cEid
	cStatus
	cFsuid
	cSuid
	cFsgid
	cSgid
	cSyscall
	cExitCode
	cExitSignal
	cParentPath
	cParentCmdline
	cUsername
	cHostIdentifier
	cSource
	cProcessGuid
	cParentGuid
	cIntegrityLevel
	cOriginalFileName
	cHashes
	cPartial
	cComm
	cCgroupId
	cStartTime
	cLogonId
	cEventId
	cTechniques
	cTruncated
	cProcessKey
	cRunID
	numColumns
)

// Options tune the table.
type Options struct {
	// LocalHost is this machine's host_identifier; with BootTime it gives
	// uptime for events of this boot of this host.
	LocalHost string
	BootTime  time.Time
}

// Events returns the process_events table over st.
func Events(st *eventstore.Store, opts Options) tables.Table {
	return tables.Table{
		Name: "process_events",
		Description: "Process starts (execve) and exits from Quarry's live collectors (eBPF, netlink process connector) " +
			"and imported recordings (Sysmon, Security 4688, auditd). A superset of osquery's process_events; " +
			"parent_path/parent_cmdline survive the parent's exit. Constraints on time, pid, path, host_identifier, " +
			"source, syscall and eid are answered from the store's indexes.",
		Columns: columns,
		Generate: func(ctx context.Context, q tables.QueryContext, emit tables.EmitFunc) error {
			f := filterFor(q)
			row := make(tables.Row, len(columns))
			var emitErr error
			err := st.Scan(ctx, f, func(e *eventstore.StoredEvent) bool {
				if ctx.Err() != nil {
					emitErr = ctx.Err()
					return false
				}
				fillRow(row, e, opts)
				return emit(row)
			})
			if err != nil {
				return err
			}
			return emitErr
		},
	}
}

// filterFor turns the query's constraints into a store filter. Only what the
// store's indexes answer exactly is pushed down; SQLite re-checks the rest.
func filterFor(q tables.QueryContext) eventstore.Filter {
	f := eventstore.Filter{Kinds: []int64{int64(telemetry.KindExec), int64(telemetry.KindExit)}}
	if lo, hi, ok := q.IntRange("time"); ok {
		if lo > minUnix {
			f.Since = time.Unix(lo, 0)
		}
		if hi < maxUnix {
			f.Until = time.Unix(hi+1, 0)
		}
		if lo > hi {
			f.Until = f.Since // empty range
		}
	}
	if lo, _, ok := q.IntRange("eid"); ok && lo > 0 {
		f.EIDMin = lo
	}
	if vals, ok := q.Equals("pid"); ok {
		f.PIDs = ints(vals)
		if f.PIDs == nil {
			f.PIDs = []int64{} // NULL or non-numeric: matches nothing
		}
	}
	if vals, ok := q.EqualStrings("path"); ok {
		f.Paths = nonNil(vals)
	}
	if vals, ok := q.EqualStrings("host_identifier"); ok {
		f.Hosts = nonNil(vals)
	}
	if vals, ok := q.EqualStrings("source"); ok {
		f.Sources = nonNil(vals)
	}
	if vals, ok := q.EqualStrings("process_key"); ok {
		f.ProcessKeys = nonNil(vals)
	}
	if vals, ok := q.EqualStrings("run_id"); ok {
		f.RunIDs = nonNil(vals)
	}
	if vals, ok := q.EqualStrings("syscall"); ok {
		f.Kinds = []int64{}
		for _, v := range vals {
			switch v {
			case "execve":
				f.Kinds = append(f.Kinds, int64(telemetry.KindExec))
			case "exit":
				f.Kinds = append(f.Kinds, int64(telemetry.KindExit))
			}
		}
	}
	for _, c := range q.Constraints {
		if c.Column == "path" && c.Op == tables.OpLIKE {
			if s, ok := c.Value.(string); ok {
				f.PathLike = append(f.PathLike, s)
			}
		}
	}
	return noMatchGuard(f)
}

const (
	minUnix = -62135596800 // 0001-01-01
	maxUnix = 253402300799 // 9999-12-31
)

// noMatchGuard turns an empty IN list (a constraint nothing can satisfy) into
// a filter that selects nothing, since the store reads an empty list as "no
// filter".
func noMatchGuard(f eventstore.Filter) eventstore.Filter {
	if (f.PIDs != nil && len(f.PIDs) == 0) || (f.Paths != nil && len(f.Paths) == 0) ||
		(f.Hosts != nil && len(f.Hosts) == 0) || (f.Sources != nil && len(f.Sources) == 0) ||
		(f.ProcessKeys != nil && len(f.ProcessKeys) == 0) ||
		len(f.Kinds) == 0 {
		return eventstore.Filter{Since: time.Unix(1, 0), Until: time.Unix(1, 0)}
	}
	return f
}

func ints(vals []any) []int64 {
	var out []int64
	for _, v := range vals {
		switch x := v.(type) {
		case int64:
			out = append(out, x)
		case float64:
			if x == float64(int64(x)) {
				out = append(out, int64(x))
			}
		case string:
			var n int64
			ok := len(x) > 0
			for _, ch := range strings.TrimSpace(x) {
				if ch < '0' || ch > '9' {
					ok = false
					break
				}
				n = n*10 + int64(ch-'0')
			}
			if ok {
				out = append(out, n)
			}
		}
	}
	return out
}

func nonNil(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

func fillRow(row tables.Row, e *eventstore.StoredEvent, opts Options) {
	for i := range row {
		row[i] = nil
	}
	row[cPid] = e.PID
	row[cPath] = e.Path
	row[cCmdline] = e.Cmdline
	row[cCmdlineSize] = int64(len(e.Cmdline))
	row[cCwd] = e.Cwd
	row[cAuid] = e.AUID
	row[cUid] = e.UID
	row[cEuid] = e.EUID
	row[cGid] = e.GID
	row[cEgid] = e.EGID
	row[cParent] = e.PPID
	row[cTime] = e.Time.Unix()
	if opts.LocalHost != "" && e.Host == opts.LocalHost && !opts.BootTime.IsZero() && e.Time.After(opts.BootTime) {
		row[cUptime] = int64(e.Time.Sub(opts.BootTime) / time.Second)
	}
	row[cEid] = e.EID
	row[cSyscall] = e.Kind.String()
	if e.Kind == telemetry.KindExit {
		row[cExitCode] = e.ExitCode
		row[cExitSignal] = int64(e.ExitSignal)
	}
	row[cParentPath] = e.ParentPath
	row[cParentCmdline] = e.ParentCmdline
	row[cUsername] = e.Username
	row[cHostIdentifier] = e.Host
	row[cSource] = string(e.Source)
	row[cProcessGuid] = e.ProcessGUID
	row[cParentGuid] = e.ParentGUID
	row[cIntegrityLevel] = e.IntegrityLevel
	row[cOriginalFileName] = e.OriginalFileName
	row[cHashes] = e.Hashes
	partial := int64(0)
	if e.Partial {
		partial = 1
	}
	row[cPartial] = partial
	row[cComm] = e.Comm
	row[cCgroupId] = int64(e.CgroupID)
	if !e.StartTime.IsZero() {
		row[cStartTime] = e.StartTime.Unix()
	}
	row[cLogonId] = e.LogonID
	row[cEventId] = int64(e.EventID)
	row[cTechniques] = e.Techniques
	row[cTruncated] = boolInt(e.Truncated)
	row[cProcessKey] = e.ProcessKey
	row[cRunID] = e.RunID
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
