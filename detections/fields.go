package detections

import (
	"strconv"

	"github.com/quarry-sec/quarry/telemetry"
)

// Field mapping: a rule names Sigma fields (Image, CommandLine…); an event
// holds typed process fields plus its source's raw fields in Fields. A Sigma
// field is looked up, in order:
//
//  1. under the source's own names for it (Security 4688: NewProcessName for
//     Image, ParentProcessName for ParentImage, SubjectUserName for User…;
//     auditd: exe for Image…) in Fields;
//  2. under its own name in Fields (Sysmon EventData already uses Sigma
//     names; raw audit fields such as type, a0, key are found this way);
//  3. in the typed fields (Image=Path, CommandLine=Cmdline,
//     ParentImage=ParentPath, ParentCommandLine=ParentCmdline,
//     User=Username, CurrentDirectory=Cwd, LogonId=LogonID or, on Linux,
//     AUID, ProcessId=PID, ParentProcessId=PPID, IntegrityLevel,
//     OriginalFileName, Hashes, ProcessGuid, ParentProcessGuid,
//     Computer=Host, EventID, Channel; for auditd rules exe, comm, cwd,
//     pid, ppid, uid, auid and a0… from Args).
//
// A typed string field is absent when empty, a typed id when Unknown.

// sourceAliases maps, per source, a Sigma field to the source's own names.
var sourceAliases = map[telemetry.Source]map[string][]string{
	telemetry.SourceSecurity: {
		"Image":             {"NewProcessName"},
		"ParentImage":       {"ParentProcessName"},
		"User":              {"SubjectUserName"},
		"LogonId":           {"SubjectLogonId"},
		"ProcessId":         {"NewProcessId"},
		"ParentProcessId":   {"ProcessId"},
		"IntegrityLevel":    {"MandatoryLabel"},
		"CommandLine":       {"CommandLine"},
		"ParentCommandLine": {"ParentCommandLine"},
	},
	telemetry.SourceAuditd: {
		"Image":            {"exe"},
		"CurrentDirectory": {"cwd"},
		"ProcessId":        {"pid"},
		"ParentProcessId":  {"ppid"},
		"LogonId":          {"auid"},
	},
}

// typedField returns a typed field of ev by Sigma (or audit) name. Numbers
// are appended to buf; the returned string may alias buf.
func typedField(ev *telemetry.Event, name string, buf []byte) (string, bool, []byte) {
	str := func(s string) (string, bool, []byte) { return s, s != "", buf }
	num := func(n int64) (string, bool, []byte) {
		if n == telemetry.Unknown {
			return "", false, buf
		}
		start := len(buf)
		buf = strconv.AppendInt(buf, n, 10)
		return string(buf[start:]), true, buf
	}
	linux := ev.Channel == "" && ev.EventID == 0
	switch name {
	case "Image", "exe":
		return str(ev.Path)
	case "CommandLine":
		return str(ev.Cmdline)
	case "ParentImage":
		return str(ev.ParentPath)
	case "ParentCommandLine":
		return str(ev.ParentCmdline)
	case "User":
		return str(ev.Username)
	case "CurrentDirectory", "cwd":
		return str(ev.Cwd)
	case "LogonId":
		if linux && ev.LogonID == "" {
			return num(ev.AUID)
		}
		return str(ev.LogonID)
	case "auid":
		return num(ev.AUID)
	case "ProcessId", "pid":
		return num(ev.PID)
	case "ParentProcessId", "ppid":
		return num(ev.PPID)
	case "uid":
		return num(ev.UID)
	case "euid":
		return num(ev.EUID)
	case "gid":
		return num(ev.GID)
	case "egid":
		return num(ev.EGID)
	case "comm":
		return str(ev.Comm)
	case "IntegrityLevel":
		return str(ev.IntegrityLevel)
	case "OriginalFileName":
		return str(ev.OriginalFileName)
	case "Hashes":
		return str(ev.Hashes)
	case "ProcessGuid":
		return str(ev.ProcessGUID)
	case "ParentProcessGuid":
		return str(ev.ParentGUID)
	case "Computer":
		return str(ev.Host)
	case "Channel":
		return str(ev.Channel)
	case "EventID":
		if ev.EventID == 0 {
			return "", false, buf
		}
		return num(int64(ev.EventID))
	case "argc":
		if len(ev.Args) == 0 {
			return "", false, buf
		}
		return num(int64(len(ev.Args)))
	case "type":
		if ev.Source == telemetry.SourceAuditd && ev.Kind == telemetry.KindExec {
			return "EXECVE", true, buf
		}
	}
	if len(name) >= 2 && name[0] == 'a' {
		if i, err := strconv.Atoi(name[1:]); err == nil && i >= 0 && i < len(ev.Args) {
			return ev.Args[i], true, buf
		}
	}
	return "", false, buf
}

// lookupField finds a Sigma field in ev (see the mapping above).
func lookupField(ev *telemetry.Event, name string, buf []byte) (string, bool, []byte) {
	return lookupFieldIn(ev, sourceAliases[ev.Source], name, buf)
}

// lookupFieldIn is lookupField with ev's source aliases already looked up
// (al is sourceAliases[ev.Source]).
func lookupFieldIn(ev *telemetry.Event, al map[string][]string, name string, buf []byte) (string, bool, []byte) {
	if al != nil {
		for _, a := range al[name] {
			if v, ok := ev.Fields.Get(a); ok {
				return v, true, buf
			}
		}
	}
	if v, ok := ev.Fields.Get(name); ok {
		return v, true, buf
	}
	return typedField(ev, name, buf)
}

// typedFieldNames are the typed fields offered to keyword searches.
var typedFieldNames = []string{"Image", "CommandLine", "ParentImage", "ParentCommandLine", "User",
	"CurrentDirectory", "OriginalFileName", "Hashes", "IntegrityLevel"}

// typedFieldIDs are the field ids of typedFieldNames, registered up front
// so that an engine's slots always hold them.
var typedFieldIDs = func() []int {
	ids := make([]int, len(typedFieldNames))
	for i, n := range typedFieldNames {
		ids[i] = fieldID(n)
	}
	return ids
}()

// eachValue calls fn with every field value of ev (for keyword searches):
// Fields, then the typed string fields not already in Fields.
func eachValue(ev *telemetry.Event, fn func(v string) bool) bool {
	for _, x := range ev.Fields.List() {
		if fn(x.Value) {
			return true
		}
	}
	for _, n := range typedFieldNames {
		if _, ok := ev.Fields.Get(n); ok {
			continue
		}
		if v, ok, _ := typedField(ev, n, nil); ok && fn(v) {
			return true
		}
	}
	return false
}
