package activity

import (
	"strconv"
	"strings"
)

// messageCodes are the words Windows shows for the message codes (%%N,
// from msobjs.dll and adtschema.dll) Security events carry in their access
// lists, token and logon fields.
var messageCodes = map[int]string{
	// Standard access rights.
	1537: "DELETE",
	1538: "READ_CONTROL",
	1539: "WRITE_DAC",
	1540: "WRITE_OWNER",
	1541: "SYNCHRONIZE",
	1542: "ACCESS_SYS_SEC",
	// Logon and token fields.
	1832: "Identification",
	1833: "Impersonation",
	1840: "Delegation",
	1842: "Yes",
	1843: "No",
	1936: "TokenElevationTypeDefault (1)",
	1937: "TokenElevationTypeFull (2)",
	1938: "TokenElevationTypeLimited (3)",
	// Registry value operations (4657).
	1904: "New registry value created",
	1905: "Existing registry value modified",
	1906: "Registry value deleted",
	// Logon failure reasons (4625).
	2304: "An Error occured during Logon.",
	2305: "The specified user account has expired.",
	2307: "Account locked out.",
	2309: "The specified account's password has expired.",
	2310: "Account currently disabled.",
	2311: "Account logon time restriction violation.",
	2312: "User not allowed to logon at this computer.",
	2313: "Unknown user name or bad password.",
	// File, directory and pipe access.
	4416: "ReadData (or ListDirectory)",
	4417: "WriteData (or AddFile)",
	4418: "AppendData (or AddSubdirectory or CreatePipeInstance)",
	4419: "ReadEA",
	4420: "WriteEA",
	4421: "Execute/Traverse",
	4422: "DeleteChild",
	4423: "ReadAttributes",
	4424: "WriteAttributes",
	// Registry key access.
	4432: "Query key value",
	4433: "Set key value",
	4434: "Create sub-key",
	4435: "Enumerate sub-keys",
	4436: "Notify about changes to keys",
	4437: "Create Link",
	// Process access.
	4480: "Force process termination",
	4481: "Create new thread in process",
	4482: "Set process session ID",
	4483: "Perform virtual memory operation",
	4484: "Read from process memory",
	4485: "Write to process memory",
	4486: "Duplicate handle into or out of process",
	4487: "Create a subprocess of process",
	4488: "Set process quotas",
	4489: "Set process information",
	4490: "Query process information",
	4491: "Set process termination port",
	4492: "Undefined Access (no effect) Bit 12",
	4493: "Undefined Access (no effect) Bit 13",
	4494: "Undefined Access (no effect) Bit 14",
	4495: "Undefined Access (no effect) Bit 15",
	// Windows Filtering Platform (5152-5159).
	14592: "Inbound",
	14593: "Outbound",
	14608: "Resource Assignment",
	14609: "Listen",
	14610: "Receive/Accept",
	14611: "Connect",
}

// RenderCodes replaces each Windows message code (%%N) in s with its words,
// and returns a list of codes (as Security events give access lists, one
// code a line) joined with ", ". Text that is not a known code is kept as
// it is; an empty or "-" value is returned unchanged.
func RenderCodes(s string) string {
	if !strings.Contains(s, "%%") {
		return strings.TrimSpace(s)
	}
	fields := strings.Fields(s)
	out := make([]string, 0, len(fields))
	for _, f := range fields {
		out = append(out, renderToken(f))
	}
	return strings.Join(out, ", ")
}

// renderToken renders one whitespace-free token: "%%4417" becomes its
// words; a token with codes run together ("%%1537%%1538") has each one
// rendered.
func renderToken(tok string) string {
	if !strings.HasPrefix(tok, "%%") {
		return tok
	}
	parts := strings.Split(tok[2:], "%%")
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		n, err := strconv.Atoi(p)
		if w, ok := messageCodes[n]; ok && err == nil {
			out = append(out, w)
		} else {
			out = append(out, "%%"+p)
		}
	}
	return strings.Join(out, ", ")
}

// logonTypes names Security's LogonType numbers.
var logonTypes = map[int64]string{
	0:  "System",
	2:  "Interactive",
	3:  "Network",
	4:  "Batch",
	5:  "Service",
	7:  "Unlock",
	8:  "NetworkCleartext",
	9:  "NewCredentials",
	10: "RemoteInteractive",
	11: "CachedInteractive",
	12: "CachedRemoteInteractive",
	13: "CachedUnlock",
}

// ntStatus names the NTSTATUS codes logon failures (4625) carry.
var ntStatus = map[uint64]string{
	0xC000005E: "There are currently no logon servers available",
	0xC0000064: "User logon with misspelled or bad user account",
	0xC000006A: "User logon with misspelled or bad password",
	0xC000006D: "Bad user name or authentication information",
	0xC000006F: "User logon outside authorized hours",
	0xC0000070: "User logon from unauthorized workstation",
	0xC0000071: "User logon with expired password",
	0xC0000072: "User logon to account disabled by administrator",
	0xC0000133: "Clocks between DC and other computer too far out of sync",
	0xC000015B: "The user has not been granted the requested logon type",
	0xC0000192: "The NetLogon service was not started",
	0xC0000193: "User logon with expired account",
	0xC0000224: "User is required to change password at next logon",
	0xC0000234: "User logon with account locked",
}

// statusText renders an NTSTATUS value ("0xc000006d") as words; "" for
// success or an unknown code.
func statusText(s string) string {
	s = strings.TrimSpace(s)
	if len(s) < 3 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X') {
		return ""
	}
	n, err := strconv.ParseUint(s[2:], 16, 32)
	if err != nil {
		return ""
	}
	return ntStatus[n]
}

// processRights names the process access right bits (Sysmon 10's
// GrantedAccess, 4656's AccessMask on a process).
var processRights = []struct {
	bit  uint64
	name string
}{
	{0x0001, "PROCESS_TERMINATE"},
	{0x0002, "PROCESS_CREATE_THREAD"},
	{0x0004, "PROCESS_SET_SESSIONID"},
	{0x0008, "PROCESS_VM_OPERATION"},
	{0x0010, "PROCESS_VM_READ"},
	{0x0020, "PROCESS_VM_WRITE"},
	{0x0040, "PROCESS_DUP_HANDLE"},
	{0x0080, "PROCESS_CREATE_PROCESS"},
	{0x0100, "PROCESS_SET_QUOTA"},
	{0x0200, "PROCESS_SET_INFORMATION"},
	{0x0400, "PROCESS_QUERY_INFORMATION"},
	{0x0800, "PROCESS_SUSPEND_RESUME"},
	{0x1000, "PROCESS_QUERY_LIMITED_INFORMATION"},
	{0x2000, "PROCESS_SET_LIMITED_INFORMATION"},
	{0x10000, "DELETE"},
	{0x20000, "READ_CONTROL"},
	{0x40000, "WRITE_DAC"},
	{0x80000, "WRITE_OWNER"},
	{0x100000, "SYNCHRONIZE"},
}

// ProcessAccessNames renders a process access mask ("0x1410") as its right
// names joined with "|" (PROCESS_ALL_ACCESS for 0x1fffff and above). A value
// that is not a hex mask (Linux's "ptrace:attach") is returned as it is.
func ProcessAccessNames(mask string) string {
	m := strings.TrimSpace(mask)
	if len(m) < 3 || m[0] != '0' || (m[1] != 'x' && m[1] != 'X') {
		return m
	}
	n, err := strconv.ParseUint(m[2:], 16, 64)
	if err != nil {
		return m
	}
	if n&0x1fffff == 0x1fffff {
		return "PROCESS_ALL_ACCESS"
	}
	var names []string
	for _, r := range processRights {
		if n&r.bit != 0 {
			names = append(names, r.name)
			n &^= r.bit
		}
	}
	if n != 0 {
		names = append(names, "0x"+strconv.FormatUint(n, 16))
	}
	return strings.Join(names, "|")
}
