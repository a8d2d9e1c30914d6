package activity

import (
	"strconv"
	"strings"

	"github.com/quarry-sec/quarry/tables"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

// text and integer declare a column read from an event.
func text(name, desc string, v func(a *eventstore.Activity) any) column {
	return column{Column: tables.Column{Name: name, Type: tables.Text, Description: desc}, value: v}
}

func integer(name, desc string, v func(a *eventstore.Activity) any) column {
	return column{Column: tables.Column{Name: name, Type: tables.BigInt, Description: desc}, value: v}
}

// byEventID returns a value function mapping the event ID to a word, with
// other (no event ID: a live Linux event) deciding otherwise.
func byEventID(words map[int]string, other func(a *eventstore.Activity) string) func(a *eventstore.Activity) any {
	return func(a *eventstore.Activity) any {
		if w, ok := words[a.EventID]; ok {
			return w
		}
		if other != nil {
			return nullable(other(a))
		}
		return nil
	}
}

// Channels of the Windows logs the tables read besides Sysmon's.
const (
	taskSchedulerChannel = "Microsoft-Windows-TaskScheduler/Operational"
	powershellChannel    = "Microsoft-Windows-PowerShell/Operational"
	classicPSChannel     = "Windows PowerShell"
)

// specs are the activity tables, in the order an event is matched against
// them (their selectors do not overlap).
var specs = []*spec{
	socketEvents, fileEvents, registryEvents, dnsLookupEvents, imageLoadEvents, processAccessEvents,
	remoteThreadEvents, logonEvents, serviceEvents, scheduledTaskEvents, scriptEvents, pipeEvents,
	wmiEvents, shareAccessEvents, logTamperEvents, objectAccessEvents, accountEvents,
}

// ---- socket_events ----

// socket is one network event's endpoints, from the local process's side.
type socket struct {
	action, direction               string
	local, localPort, remote, rport string
}

func socketOf(a *eventstore.Activity) socket {
	var s socket
	if a.Channel == "Security" {
		switch a.EventID {
		case 5154, 5155:
			s.action = "listen"
		case 5158, 5159:
			s.action = "bind"
		default:
			switch a.Field("LayerName") {
			case "%%14611":
				s.action = "connect"
			case "%%14610":
				s.action = "accept"
			default:
				if a.Field("Direction") == "%%14592" {
					s.action = "accept"
				} else {
					s.action = "connect"
				}
			}
		}
		switch a.Field("Direction") {
		case "%%14592":
			s.direction = "inbound"
		case "%%14593":
			s.direction = "outbound"
		}
		s.local, s.localPort = a.Field("SourceAddress"), a.Field("SourcePort")
		s.remote, s.rport = a.Field("DestAddress"), a.Field("DestPort")
		return s
	}
	initiated := !strings.EqualFold(a.Field("Initiated"), "false")
	s.action = strings.ToLower(a.Field("Action"))
	if s.action == "" {
		s.action = "accept"
		if initiated {
			s.action = "connect"
		}
	}
	src, sport := a.Field("SourceIp"), a.Field("SourcePort")
	dst, dport := a.Field("DestinationIp"), a.Field("DestinationPort")
	if p := a.Field("SocketPath"); p != "" && src == "" && dst == "" {
		// A Unix socket (auditd): its path is the address connected to,
		// or bound.
		if s.action == "bind" || s.action == "listen" {
			src = p
		} else {
			dst = p
		}
	}
	if !initiated && s.action != "bind" && s.action != "listen" {
		// Sysmon's source is the side that initiated: for an accepted
		// connection, the remote one.
		s.local, s.localPort, s.remote, s.rport = dst, dport, src, sport
		s.direction = "inbound"
	} else {
		s.local, s.localPort, s.remote, s.rport = src, sport, dst, dport
		if s.action == "connect" {
			s.direction = "outbound"
		}
	}
	return s
}

// protocolNumber turns "tcp", "udp" or a number into IANA's number.
func protocolNumber(p string) any {
	switch strings.ToLower(strings.TrimSpace(p)) {
	case "":
		return nil
	case "tcp":
		return int64(6)
	case "udp":
		return int64(17)
	case "icmp":
		return int64(1)
	case "icmpv6", "ipv6-icmp":
		return int64(58)
	}
	if n, err := strconv.ParseInt(p, 10, 64); err == nil {
		return n
	}
	return nil
}

// family returns osquery's family number of an address: 2 (IPv4), 10 (IPv6).
func family(addr string) any {
	switch {
	case strings.Contains(addr, ":"):
		return int64(10)
	case strings.Contains(addr, "."):
		return int64(2)
	}
	return nil
}

func portValue(p string) any {
	if n, err := strconv.ParseInt(strings.TrimSpace(p), 10, 64); err == nil {
		return n
	}
	return nil
}

var socketEvents = &spec{
	name: "socket_events", osqueryName: "quarry_socket_events", kind: "network",
	description: "Network connections, accepts, binds and listens: Sysmon 3, Security 5154-5159 (Windows Filtering Platform), " +
		"Linux network_connection events (live eBPF, auditd connect/bind/accept). osquery's socket_events columns, with the acting process's image in path.",
	selectors: []eventstore.Selector{sysmon(3), securityEvents(5154, 5155, 5156, 5157, 5158, 5159), linux("network_connection")},
	columns: []column{
		text("action", "connect, accept, bind or listen", func(a *eventstore.Activity) any { return socketOf(a).action }),
		integer("family", "Address family: 2 (IPv4), 10 (IPv6) or 1 (Unix socket, from auditd)", func(a *eventstore.Activity) any {
			if f, err := strconv.ParseInt(a.Field("Family"), 10, 64); err == nil {
				return f
			}
			s := socketOf(a)
			if f := family(s.remote); f != nil {
				return f
			}
			return family(s.local)
		}),
		integer("protocol", "IP protocol number (6 TCP, 17 UDP)", func(a *eventstore.Activity) any { return protocolNumber(a.Field("Protocol")) }),
		text("local_address", "Local address", func(a *eventstore.Activity) any { return nullable(socketOf(a).local) }),
		integer("local_port", "Local port", func(a *eventstore.Activity) any { return portValue(socketOf(a).localPort) }),
		text("remote_address", "Remote address (a Unix socket's path for a connect)", func(a *eventstore.Activity) any { return nullable(socketOf(a).remote) }),
		integer("remote_port", "Remote port", func(a *eventstore.Activity) any { return portValue(socketOf(a).rport) }),
		text("remote_hostname", "Remote host name, when the source resolved it (Sysmon's DestinationHostname of a connect)", func(a *eventstore.Activity) any {
			s := socketOf(a)
			h := a.Field("DestinationHostname")
			if s.direction == "inbound" {
				h = a.Field("SourceHostname")
			}
			if h == "-" {
				return nil
			}
			return nullable(h)
		}),
		text("direction", "outbound or inbound, when known", func(a *eventstore.Activity) any { return nullable(socketOf(a).direction) }),
		integer("success", "1 when the connection was allowed, 0 when the Windows Filtering Platform blocked it", func(a *eventstore.Activity) any {
			switch a.EventID {
			case 5155, 5157, 5159:
				if a.Channel == "Security" {
					return int64(0)
				}
			}
			return int64(1)
		}),
	},
	summary: func(get func(string) string) string {
		s := get("action") + " " + protoName(get("protocol")) + " " + get("local_address") + ":" + get("local_port") +
			" -> " + get("remote_address") + ":" + get("remote_port")
		if h := get("remote_hostname"); h != "" {
			s += " (" + h + ")"
		}
		return s
	},
}

func protoName(n string) string {
	switch n {
	case "6":
		return "tcp"
	case "17":
		return "udp"
	}
	return n
}

// ---- file_events ----

var fileActions = map[int]string{
	2: "time_changed", 9: "raw_read", 11: "create", 15: "stream_created", 23: "delete", 26: "delete",
	27: "block_executable", 28: "block_shredding", 29: "executable_detected",
}

// hashPart returns one hash (MD5, SHA1, SHA256, IMPHASH) of Sysmon's
// "SHA1=…,MD5=…" Hashes (or Hash) field.
func hashPart(kind string) func(a *eventstore.Activity) any {
	return func(a *eventstore.Activity) any {
		for _, p := range strings.Split(first(a, "Hashes", "Hash"), ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(k, kind) {
				return nullable(strings.ToLower(v))
			}
		}
		return nil
	}
}

var fileEvents = &spec{
	name: "file_events", osqueryName: "quarry_file_events", kind: "file",
	description: "File activity: Sysmon 11 create, 2 creation time changed, 15 stream created, 23/26 delete, 27/28 blocked, " +
		"29 executable detected, 9 raw disk read; Linux file_event (create, modify, chmod), file_delete, file_rename, live (eBPF) or from auditd.",
	selectors: []eventstore.Selector{sysmon(2, 9, 11, 15, 23, 26, 27, 28, 29), linux("file_event", "file_delete", "file_rename")},
	columns: []column{
		text("target_path", "The file (for a raw read, the device)", firstField("TargetFilename", "Device")),
		text("action", "create, modify, delete, rename, chmod, time_changed, stream_created, executable_detected, block_executable, block_shredding, raw_read",
			byEventID(fileActions, func(a *eventstore.Activity) string {
				switch a.Category {
				case "file_delete":
					return "delete"
				case "file_rename":
					return "rename"
				}
				switch act := strings.ToLower(a.Field("Action")); act {
				case "write":
					return "modify"
				case "":
					return "create"
				default:
					return act
				}
			})),
		text("source_path", "The file's former path, for a rename", field("SourceFilename")),
		text("hashes", "Hashes of the file, Sysmon's SHA256=…,MD5=… form", firstField("Hashes", "Hash")),
		text("md5", "MD5 of the file, when hashed", hashPart("MD5")),
		text("sha1", "SHA1 of the file, when hashed", hashPart("SHA1")),
		text("sha256", "SHA256 of the file, when hashed", hashPart("SHA256")),
		text("mode", "File mode of a chmod (Linux)", field("Mode")),
		text("creation_time", "The file's creation time (Sysmon CreationUtcTime)", field("CreationUtcTime")),
		text("previous_creation_time", "The creation time before a change (Sysmon 2)", field("PreviousCreationUtcTime")),
		text("is_executable", "Whether a deleted file was an executable (Sysmon 23/26)", field("IsExecutable")),
		text("archived", "Whether Sysmon archived the deleted file", field("Archived")),
		text("contents", "Stream contents Sysmon recorded (15), e.g. a Zone.Identifier", field("Contents")),
	},
	summary: joinSummary("action", "target_path", "source_path"),
}

// ---- registry_events ----

func registryEventType(a *eventstore.Activity) string {
	if t := a.Field("EventType"); registryActions[t] != "" {
		return t
	}
	switch a.EventID {
	case 12:
		return "CreateKey"
	case 13:
		return "SetValue"
	case 14:
		return "RenameKey"
	case 4657:
		switch a.Field("OperationType") {
		case "%%1904":
			return "CreateValue"
		case "%%1906":
			return "DeleteValue"
		}
		return "SetValue"
	}
	return a.Field("EventType")
}

func registryTarget(a *eventstore.Activity) string {
	if t := a.Field("TargetObject"); t != "" {
		return t
	}
	if a.EventID == 4657 {
		k := ShortHive(a.Field("ObjectName"))
		if v := a.Field("ObjectValueName"); v != "" && v != "-" {
			return k + `\` + v
		}
		return k
	}
	return ""
}

var registryEvents = &spec{
	name: "registry_events", kind: "registry",
	description: "Registry changes: Sysmon 12 (key/value create, delete), 13 (value set), 14 (rename); Security 4657; " +
		"imported sandbox reports' registry_add/set/delete events. " +
		"TargetObject split into key and value name; kernel names (\\REGISTRY\\MACHINE) shortened to HKLM/HKU.",
	selectors: []eventstore.Selector{sysmon(12, 13, 14), securityEvents(4657), linux("registry_add", "registry_set", "registry_delete", "registry_rename")},
	columns: []column{
		text("action", "create_key, delete_key, create_value, set_value, delete_value, rename_key", func(a *eventstore.Activity) any {
			return nullable(registryActions[registryEventType(a)])
		}),
		text("event_type", "Sysmon's EventType (CreateKey, DeleteKey, SetValue, RenameKey…)", func(a *eventstore.Activity) any { return nullable(registryEventType(a)) }),
		text("target_object", "The key or value acted on, Sysmon's TargetObject", func(a *eventstore.Activity) any { return nullable(registryTarget(a)) }),
		text("key", "The registry key", func(a *eventstore.Activity) any {
			k, _ := SplitTargetObject(registryTarget(a), registryEventType(a))
			return nullable(k)
		}),
		text("value_name", "The value's name, for a value event", func(a *eventstore.Activity) any {
			_, v := SplitTargetObject(registryTarget(a), registryEventType(a))
			return nullable(v)
		}),
		text("details", "The value written (Sysmon Details; Security NewValue)", firstField("Details", "NewValue")),
		text("previous_details", "The value before the change (Security 4657 OldValue)", field("OldValue")),
		text("value_type", "The value's type (Security 4657 NewValueType)", codesField("NewValueType")),
		text("new_name", "The new name of a renamed key", field("NewName")),
	},
	summary: func(get func(string) string) string {
		s := get("action") + " " + get("target_object")
		if d := get("details"); d != "" {
			s += " = " + d
		}
		if n := get("new_name"); n != "" {
			s += " -> " + n
		}
		return s
	},
}

// ---- dns_lookup_events ----

var dnsLookupEvents = &spec{
	name: "dns_lookup_events", osqueryName: "quarry_dns_lookup_events", kind: "dns",
	description: "DNS queries by process: Sysmon 22 and live Linux dns_query events.",
	selectors:   []eventstore.Selector{sysmon(22), linux("dns_query")},
	columns: []column{
		text("name", "The name queried (QueryName)", field("QueryName")),
		integer("status", "Query status (0 success; else the DNS or Windows error code)", intField("QueryStatus")),
		text("answers", "The answers, Sysmon's QueryResults form (type: 5 alias;address;…)", field("QueryResults")),
	},
	summary: func(get func(string) string) string {
		s := "query " + get("name")
		if r := get("answers"); r != "" {
			s += " -> " + r
		}
		return s
	},
}

// ---- image_load_events ----

var imageLoadEvents = &spec{
	name: "image_load_events", kind: "image_load",
	description: "Images loaded: Sysmon 7 (DLL into a process), Sysmon 6 (driver); Linux driver_load (kernel module, live or auditd) " +
		"and image_load (memfd: an anonymous file executed).",
	selectors: []eventstore.Selector{sysmon(6, 7), linux("driver_load", "image_load")},
	columns: []column{
		text("action", "load (DLL), driver_load (Windows driver), module_load (Linux kernel module), memfd_load", func(a *eventstore.Activity) any {
			switch {
			case a.EventID == 6:
				return "driver_load"
			case a.EventID == 7:
				return "load"
			case a.Category == "driver_load":
				return "module_load"
			case strings.HasPrefix(a.Field("ImageLoaded"), "memfd:"):
				return "memfd_load"
			}
			return "load"
		}),
		text("image_loaded", "The image loaded", field("ImageLoaded")),
		integer("signed", "1 when signed, 0 when not, NULL unknown", func(a *eventstore.Activity) any {
			switch strings.ToLower(a.Field("Signed")) {
			case "true":
				return int64(1)
			case "false":
				return int64(0)
			}
			return nil
		}),
		text("signature", "The signer", field("Signature")),
		text("signature_status", "Valid, Expired, Unavailable…", field("SignatureStatus")),
		text("hashes", "Hashes of the image, Sysmon's form", field("Hashes")),
		text("md5", "MD5 of the image", hashPart("MD5")),
		text("sha256", "SHA256 of the image", hashPart("SHA256")),
		text("original_file_name", "PE OriginalFileName", field("OriginalFileName")),
		text("description", "PE description", field("Description")),
		text("company", "PE company", field("Company")),
		text("product", "PE product", field("Product")),
	},
	summary: joinSummary("action", "image_loaded", "signature"),
}

// ---- process_access_events, remote_thread_events ----

var processAccessEvents = &spec{
	name: "process_access_events", kind: "process_access",
	description: "A process opening another (Sysmon 10), e.g. to read lsass memory; live Linux process_access (ptrace, " +
		"process_vm_writev). pid/path are the source process; target_* the process opened.",
	selectors: []eventstore.Selector{sysmon(10), linux("process_access")},
	columns: []column{
		integer("target_pid", "The process opened", intField("TargetProcessId")),
		text("target_path", "The opened process's image", field("TargetImage")),
		text("granted_access", "The access granted: Windows' hex mask (0x1410) or the Linux operation (ptrace:attach)", field("GrantedAccess")),
		text("access", "The access granted, as right names (PROCESS_VM_READ|…)", func(a *eventstore.Activity) any {
			return nullable(ProcessAccessNames(a.Field("GrantedAccess")))
		}),
		text("call_trace", "Call stack of the opening thread (Sysmon CallTrace)", field("CallTrace")),
		text("source_process_guid", "Sysmon SourceProcessGuid", firstField("SourceProcessGuid", "SourceProcessGUID")),
		text("target_process_guid", "Sysmon TargetProcessGuid", firstField("TargetProcessGuid", "TargetProcessGUID")),
		integer("source_thread_id", "Thread that opened the process", intField("SourceThreadId")),
		text("target_user", "User of the opened process", field("TargetUser")),
	},
	summary: joinSummary("target_path", "granted_access", "access"),
}

var remoteThreadEvents = &spec{
	name: "remote_thread_events", kind: "remote_thread",
	description: "Threads created in another process (Sysmon 8): pid/path are the source process; target_* the process the thread runs in.",
	selectors:   []eventstore.Selector{sysmon(8), linux("create_remote_thread")},
	columns: []column{
		integer("target_pid", "The process the thread was created in", intField("TargetProcessId")),
		text("target_path", "The target process's image", field("TargetImage")),
		integer("new_thread_id", "The new thread", intField("NewThreadId")),
		text("start_address", "The thread's start address", field("StartAddress")),
		text("start_module", "The module of the start address", field("StartModule")),
		text("start_function", "The function at the start address", field("StartFunction")),
		text("source_process_guid", "Sysmon SourceProcessGuid", firstField("SourceProcessGuid", "SourceProcessGUID")),
		text("target_process_guid", "Sysmon TargetProcessGuid", firstField("TargetProcessGuid", "TargetProcessGUID")),
	},
	summary: func(get func(string) string) string {
		return "thread in " + get("target_path") + " (pid " + get("target_pid") + ") at " +
			strings.TrimSpace(get("start_module")+" "+get("start_function")+" "+get("start_address"))
	},
}

// ---- logon_events ----

var logonActions = map[int]string{
	4624: "logon", 4625: "logon_failed", 4634: "logoff", 4647: "logoff_initiated", 4648: "explicit_credentials",
	4672: "special_privileges", 4627: "group_membership", 4778: "session_reconnected", 4779: "session_disconnected",
}

// logonUser is the account the logon is about.
func logonUser(a *eventstore.Activity, user, domain bool) string {
	u, d := a.Field("TargetUserName"), a.Field("TargetDomainName")
	if a.EventID == 4672 || u == "" {
		u, d = a.Field("SubjectUserName"), a.Field("SubjectDomainName")
	}
	if a.EventID == 4778 || a.EventID == 4779 {
		u, d = a.Field("AccountName"), a.Field("AccountDomain")
	}
	if user {
		return u
	}
	return d
}

var logonEvents = &spec{
	name: "logon_events", kind: "logon",
	description: "Logons and logoffs (Security 4624, 4625 failed, 4634, 4647, 4648 explicit credentials, 4672 special privileges, " +
		"4627 group membership, 4778/4779 RDP reconnect/disconnect), logon types and failure reasons in words.",
	selectors: []eventstore.Selector{securityEvents(4624, 4625, 4627, 4634, 4647, 4648, 4672, 4778, 4779)},
	columns: []column{
		text("action", "logon, logon_failed, logoff, logoff_initiated, explicit_credentials, special_privileges, group_membership…", byEventID(logonActions, nil)),
		text("user", "The account logged on (TargetUserName; the subject for 4672)", func(a *eventstore.Activity) any { return nullable(logonUser(a, true, false)) }),
		text("domain", "The account's domain", func(a *eventstore.Activity) any { return nullable(logonUser(a, false, true)) }),
		text("user_sid", "The account's SID", firstField("TargetUserSid", "SubjectUserSid")),
		text("logon_id", "The logon session", firstField("TargetLogonId", "LogonID", "SubjectLogonId")),
		integer("logon_type", "Logon type number (2 interactive, 3 network, 10 remote interactive…)", intField("LogonType")),
		text("logon_type_name", "Logon type in words", func(a *eventstore.Activity) any {
			if n, ok := parseNumber(a.Field("LogonType")); ok {
				return nullable(logonTypes[n])
			}
			return nil
		}),
		text("source_address", "Address the logon came from", firstField("IpAddress", "ClientAddress")),
		integer("source_port", "Port the logon came from", intField("IpPort")),
		text("workstation", "Workstation name the logon came from", firstField("WorkstationName", "ClientName")),
		text("logon_process", "Logon process (User32, NtLmSsp, Kerberos…)", field("LogonProcessName")),
		text("auth_package", "Authentication package (NTLM, Kerberos, Negotiate)", field("AuthenticationPackageName")),
		text("status", "NTSTATUS of a failure", field("Status")),
		text("sub_status", "NTSTATUS sub-status of a failure", field("SubStatus")),
		text("failure_reason", "Why the logon failed, in words", func(a *eventstore.Activity) any {
			if r := RenderCodes(a.Field("FailureReason")); r != "" {
				if s := statusText(a.Field("SubStatus")); s != "" {
					return r + " (" + s + ")"
				}
				return r
			}
			if s := statusText(a.Field("SubStatus")); s != "" {
				return s
			}
			return nullable(statusText(a.Field("Status")))
		}),
		text("subject_user", "The account that requested the logon", func(a *eventstore.Activity) any {
			return nullable(windowsUser(a.Field("SubjectDomainName"), a.Field("SubjectUserName")))
		}),
		text("target_server", "Server of explicit credentials (4648)", field("TargetServerName")),
		text("elevated_token", "Whether the token is elevated", codesField("ElevatedToken")),
		text("impersonation_level", "Impersonation level", codesField("ImpersonationLevel")),
		text("privileges", "Special privileges assigned (4672)", func(a *eventstore.Activity) any {
			return nullable(strings.Join(strings.Fields(a.Field("PrivilegeList")), ", "))
		}),
	},
	summary: func(get func(string) string) string {
		s := get("action") + " " + get("domain") + `\` + get("user")
		if t := get("logon_type_name"); t != "" {
			s += " type " + t
		}
		if src := get("source_address"); src != "" && src != "-" {
			s += " from " + src
		}
		if r := get("failure_reason"); r != "" {
			s += ": " + r
		}
		return s
	},
}

// ---- service_events ----

var serviceStartTypes = map[string]string{"0": "boot start", "1": "system start", "2": "auto start", "3": "demand start", "4": "disabled"}

var serviceTypes = map[string]string{
	"0x1": "kernel mode driver", "0x2": "file system driver", "0x10": "user mode service",
	"0x20": "user mode service (shared process)", "0x110": "user mode service (interactive)",
}

var serviceEvents = &spec{
	name: "service_events", kind: "service",
	description: "Services installed (System 7045, Security 4697), start types changed (System 7040) and state changes (System 7036).",
	selectors:   []eventstore.Selector{systemEvents(7036, 7040, 7045), securityEvents(4697)},
	columns: []column{
		text("action", "installed, start_type_changed, state_changed", byEventID(map[int]string{
			7045: "installed", 4697: "installed", 7040: "start_type_changed", 7036: "state_changed"}, nil)),
		text("service_name", "The service", func(a *eventstore.Activity) any {
			switch a.EventID {
			case 7040:
				return nullable(first(a, "param4", "param1"))
			case 7036:
				return nullable(first(a, "param1"))
			}
			return nullable(a.Field("ServiceName"))
		}),
		text("display_name", "The service's display name (7040, 7036)", func(a *eventstore.Activity) any {
			if a.EventID == 7040 || a.EventID == 7036 {
				return nullable(a.Field("param1"))
			}
			return nil
		}),
		text("image_path", "The service's program", firstField("ImagePath", "ServiceFileName")),
		text("start_type", "auto start, demand start, disabled… (for 7040 the new one)", func(a *eventstore.Activity) any {
			if a.EventID == 7040 {
				return nullable(a.Field("param3"))
			}
			t := first(a, "StartType", "ServiceStartType")
			if w, ok := serviceStartTypes[t]; ok {
				return w
			}
			return nullable(t)
		}),
		text("previous_start_type", "The start type before a change (7040)", func(a *eventstore.Activity) any {
			if a.EventID == 7040 {
				return nullable(a.Field("param2"))
			}
			return nil
		}),
		text("service_type", "user mode service, kernel mode driver…", func(a *eventstore.Activity) any {
			t := a.Field("ServiceType")
			if w, ok := serviceTypes[strings.ToLower(t)]; ok {
				return w
			}
			return nullable(t)
		}),
		text("account", "Account the service runs as", firstField("AccountName", "ServiceAccount")),
		text("state", "The state entered (7036: running, stopped)", func(a *eventstore.Activity) any {
			if a.EventID == 7036 {
				return nullable(a.Field("param2"))
			}
			return nil
		}),
	},
	summary: joinSummary("action", "service_name", "image_path", "start_type", "state"),
}

// ---- scheduled_task_events ----

var taskActions = map[int]string{
	4698: "created", 4699: "deleted", 4700: "enabled", 4701: "disabled", 4702: "updated",
	106: "registered", 140: "updated", 141: "deleted", 100: "started", 102: "finished", 129: "process_launched",
	200: "action_started", 201: "action_completed",
}

func taskContent(a *eventstore.Activity) string { return first(a, "TaskContent", "TaskContentNew") }

var scheduledTaskEvents = &spec{
	name: "scheduled_task_events", kind: "scheduled_task",
	description: "Scheduled tasks created, deleted, enabled, disabled, updated (Security 4698-4702) and the Task Scheduler's " +
		"own log (106 registered, 140 updated, 141 deleted, 100/102/129/200/201 runs); the task's command from its XML.",
	selectors: []eventstore.Selector{securityEvents(4698, 4699, 4700, 4701, 4702),
		{Channels: []string{taskSchedulerChannel}, EventIDs: []int{100, 102, 106, 129, 140, 141, 200, 201}}},
	columns: []column{
		text("action", "created, deleted, enabled, disabled, updated, registered, started…", byEventID(taskActions, nil)),
		text("task_name", "The task's path", field("TaskName")),
		text("command", "The program the task runs (its first Exec action)", func(a *eventstore.Activity) any {
			c, _ := TaskCommand(taskContent(a))
			if c == "" {
				return nullable(first(a, "ActionName", "Path"))
			}
			return c
		}),
		text("arguments", "The program's arguments", func(a *eventstore.Activity) any {
			_, args := TaskCommand(taskContent(a))
			return nullable(args)
		}),
		text("task_content", "The task's XML definition", func(a *eventstore.Activity) any { return nullable(taskContent(a)) }),
		text("run_as", "The user context the task runs in (Task Scheduler log)", firstField("UserContext", "UserName")),
	},
	summary: joinSummary("action", "task_name", "command", "arguments"),
}

// ---- pipe_events, wmi_events ----

var pipeEvents = &spec{
	name: "pipe_events", kind: "pipe",
	description: "Named pipes created (Sysmon 17) and connected (Sysmon 18).",
	selectors:   []eventstore.Selector{sysmon(17, 18)},
	columns: []column{
		text("action", "created or connected", byEventID(map[int]string{17: "created", 18: "connected"}, nil)),
		text("pipe_name", "The pipe", field("PipeName")),
	},
	summary: joinSummary("action", "pipe_name"),
}

var wmiEvents = &spec{
	name: "wmi_events", kind: "wmi",
	description: "WMI event subscriptions (Sysmon 19 filter, 20 consumer, 21 filter-to-consumer binding): the persistence of T1546.003.",
	selectors:   []eventstore.Selector{sysmon(19, 20, 21)},
	columns: []column{
		text("action", "filter, consumer or binding", byEventID(map[int]string{19: "filter", 20: "consumer", 21: "binding"}, nil)),
		text("operation", "Created, Deleted…", field("Operation")),
		text("name", "The filter's or consumer's name", field("Name")),
		text("event_namespace", "The filter's namespace", field("EventNamespace")),
		text("query", "The filter's WQL query", field("Query")),
		text("consumer_type", "The consumer's type (Command Line, Script)", field("Type")),
		text("destination", "What the consumer runs", field("Destination")),
		text("consumer", "The bound consumer", field("Consumer")),
		text("filter", "The bound filter", field("Filter")),
	},
	summary: joinSummary("action", "operation", "name", "query", "destination", "consumer", "filter"),
}

// ---- share_access_events ----

var shareAccessEvents = &spec{
	name: "share_access_events", kind: "share_access",
	description: "Network share access (Security 5140 share accessed, 5145 access to an object in a share checked, " +
		"5142-5144 share added, modified, deleted); access lists in words.",
	selectors: []eventstore.Selector{securityEvents(5140, 5142, 5143, 5144, 5145)},
	columns: []column{
		text("action", "accessed, access_checked, added, modified, deleted", byEventID(map[int]string{
			5140: "accessed", 5145: "access_checked", 5142: "added", 5143: "modified", 5144: "deleted"}, nil)),
		text("share_name", "The share", field("ShareName")),
		text("share_local_path", "The share's local path", field("ShareLocalPath")),
		text("relative_target_name", "The object in the share (5145)", field("RelativeTargetName")),
		text("object_type", "File, Directory…", field("ObjectType")),
		text("access_mask", "The access mask", field("AccessMask")),
		text("access", "The access requested, in words", codesField("AccessList")),
		text("source_address", "Address of the client", field("IpAddress")),
		integer("source_port", "Port of the client", intField("IpPort")),
	},
	summary: func(get func(string) string) string {
		s := get("action") + " " + get("share_name")
		if r := get("relative_target_name"); r != "" {
			s += `\` + r
		}
		if src := get("source_address"); src != "" {
			s += " from " + src
		}
		return s
	},
}

// ---- log_tamper_events ----

var logTamperEvents = &spec{
	name: "log_tamper_events", kind: "log_tamper",
	description: "Event logs cleared (Security 1102, System 104) and the event log service shut down (Security 1100).",
	selectors:   []eventstore.Selector{securityEvents(1100, 1102), systemEvents(104)},
	columns: []column{
		text("action", "security_log_cleared, log_cleared, logging_shutdown", byEventID(map[int]string{
			1102: "security_log_cleared", 104: "log_cleared", 1100: "logging_shutdown"}, nil)),
		text("log", "The log cleared", func(a *eventstore.Activity) any {
			if a.EventID == 1102 {
				return "Security"
			}
			return nullable(first(a, "BackupPath", "LogName"))
		}),
		text("subject_user", "Who cleared it", func(a *eventstore.Activity) any {
			return nullable(windowsUser(a.Field("SubjectDomainName"), a.Field("SubjectUserName")))
		}),
	},
	summary: joinSummary("action", "log", "subject_user"),
}

// ---- object_access_events ----

var objectActions = map[int]string{
	4656: "handle_requested", 4658: "handle_closed", 4660: "object_deleted", 4661: "handle_requested_sam",
	4662: "object_operation", 4663: "object_accessed", 4664: "hard_link", 4670: "permissions_changed",
	4673: "privileged_service_called", 4674: "privileged_object_operation", 4690: "handle_duplicated",
	4703: "token_rights_adjusted",
}

var objectAccessEvents = &spec{
	name: "object_access_events", kind: "object_access",
	description: "Object access auditing: handles requested (4656), closed (4658), duplicated (4690), objects accessed " +
		"(4663) or deleted (4660), permissions changed (4670), privileged services called (4673, 4674), token rights " +
		"adjusted (4703). Access lists and masks in words.",
	selectors: []eventstore.Selector{securityEvents(4656, 4658, 4660, 4661, 4662, 4663, 4664, 4670, 4673, 4674, 4690, 4703)},
	columns: []column{
		text("action", "handle_requested, handle_closed, object_accessed, handle_duplicated…", byEventID(objectActions, nil)),
		text("object_server", "Security, SC Manager…", field("ObjectServer")),
		text("object_type", "File, Key, Process, Token…", field("ObjectType")),
		text("object_name", "The object", func(a *eventstore.Activity) any { return nullable(ShortHive(a.Field("ObjectName"))) }),
		text("handle_id", "The handle", firstField("HandleId", "SourceHandleId")),
		text("access_mask", "The access mask", field("AccessMask")),
		text("access", "The access requested or used, in words", codesField("AccessList")),
		text("privileges", "Privileges used or enabled", func(a *eventstore.Activity) any {
			return nullable(strings.Join(strings.Fields(first(a, "PrivilegeList", "EnabledPrivilegeList")), ", "))
		}),
		text("disabled_privileges", "Privileges disabled (4703)", func(a *eventstore.Activity) any {
			v := strings.Join(strings.Fields(a.Field("DisabledPrivilegeList")), ", ")
			if v == "-" {
				return nil
			}
			return nullable(v)
		}),
		text("service", "The privileged service called (4673)", field("Service")),
		integer("target_pid", "The process a handle was duplicated into (4690)", intField("TargetProcessId")),
		text("target_handle_id", "The duplicated handle (4690)", field("TargetHandleId")),
		text("target_user", "The account whose token was adjusted (4703)", func(a *eventstore.Activity) any {
			return nullable(windowsUser(a.Field("TargetDomainName"), a.Field("TargetUserName")))
		}),
		text("old_sd", "Security descriptor before (4670)", field("OldSd")),
		text("new_sd", "Security descriptor after (4670)", field("NewSd")),
		text("logon_id", "The subject's logon session", field("SubjectLogonId")),
	},
	summary: joinSummary("action", "object_type", "object_name", "access", "privileges"),
}

// ---- account_events ----

var accountActions = map[int]string{
	4720: "user_created", 4722: "user_enabled", 4723: "password_change_attempted", 4724: "password_reset",
	4725: "user_disabled", 4726: "user_deleted", 4727: "group_created", 4728: "member_added", 4729: "member_removed",
	4730: "group_deleted", 4731: "group_created", 4732: "member_added", 4733: "member_removed", 4734: "group_deleted",
	4735: "group_changed", 4737: "group_changed", 4738: "user_changed", 4740: "user_locked_out", 4741: "computer_created",
	4742: "computer_changed", 4743: "computer_deleted", 4754: "group_created", 4755: "group_changed",
	4756: "member_added", 4757: "member_removed", 4758: "group_deleted", 4764: "group_type_changed",
	4767: "user_unlocked", 4780: "admin_acl_set", 4781: "user_renamed", 4794: "dsrm_password_set",
	4798: "user_groups_enumerated", 4799: "group_members_enumerated",
}

func accountIDs() []int {
	ids := make([]int, 0, len(accountActions))
	for id := range accountActions {
		ids = append(ids, id)
	}
	return ids
}

var accountEvents = &spec{
	name: "account_events", kind: "account",
	description: "Account and group management (Security 4720-4799): users created, enabled, deleted, passwords reset, " +
		"members added to or removed from groups, and the enumeration of a user's groups (4798) or a group's members (4799).",
	selectors: []eventstore.Selector{securityEvents(accountIDs()...)},
	columns: []column{
		text("action", "user_created, member_added, group_members_enumerated…", byEventID(accountActions, nil)),
		text("target_name", "The user or group acted on (TargetUserName)", field("TargetUserName")),
		text("target_domain", "Its domain", field("TargetDomainName")),
		text("target_sid", "Its SID", firstField("TargetSid", "TargetUserSid")),
		text("member_name", "The member added or removed", field("MemberName")),
		text("member_sid", "The member's SID", field("MemberSid")),
		text("sam_account_name", "The account's SAM name (user changes)", field("SamAccountName")),
		text("logon_id", "The subject's logon session", field("SubjectLogonId")),
	},
	summary: func(get func(string) string) string {
		s := get("action") + " " + get("target_domain") + `\` + get("target_name")
		if m := get("member_name"); m != "" && m != "-" {
			s += " member " + m
		} else if m := get("member_sid"); m != "" {
			s += " member " + m
		}
		return s
	},
}
