package importers

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/quarry-sec/quarry/telemetry"
)

// The API calls a sandbox monitor logs become the event categories Sysmon
// records, under Sysmon's field names, so the same rules (builtin and
// SigmaHQ) and tables serve them:
//
//	file written or created (NtCreateFile for writing, NtWriteFile, CopyFile,
//	  MoveFileWithProgress, URLDownloadToFile)     → file_event (TargetFilename)
//	DeleteFile, NtDeleteFile                       → file_delete
//	RegSetValueEx, NtSetValueKey                   → registry_set (TargetObject, Details)
//	RegCreateKeyEx/NtCreateKey creating a key      → registry_add
//	RegDeleteKey/Value, NtDeleteKey/ValueKey       → registry_delete
//	connect, ConnectEx, WSAConnect, InternetConnect,
//	  WinHttpConnect                               → network_connection (DestinationIp/Port/Hostname)
//	DnsQuery, getaddrinfo, GetAddrInfoW, gethostbyname → dns_query (QueryName, QueryResults)
//	NtOpenProcess/OpenProcess of another process,
//	  WriteProcessMemory/NtWriteVirtualMemory into one → process_access (TargetImage, GrantedAccess)
//	CreateRemoteThread(Ex), NtCreateThreadEx, RtlCreateUserThread,
//	  NtQueueApcThread into another process        → create_remote_thread
//	LdrLoadDll, LoadLibrary(Ex)                    → image_load (ImageLoaded)
//	CreateProcessInternalW of a process the report does not monitor → process_creation
//
// Argument names are CAPE's (FileName, FullName, ProcessHandle…) or
// Cuckoo's (filepath, regkey, process_handle…). Failed calls are left out;
// one event is made per process and object (a file written in a thousand
// calls is one file_event).

func (r *sandboxReader) handlesOf(p *sbProcess) *procHandles {
	h := r.handles[p]
	if h == nil {
		h = &procHandles{procs: map[string]int64{}, access: map[string]string{}, files: map[string]string{}}
		r.handles[p] = h
	}
	return h
}

// mapCall turns one API call of p into the events it stands for.
func (r *sandboxReader) mapCall(p *sbProcess, c *apiCall) {
	api := string(c.API)
	a := c.Arguments
	t := c.when()
	if t.IsZero() {
		t = p.first
	}
	h := r.handlesOf(p)
	switch api {
	case "NtCreateFile", "CreateFileA", "CreateFileW":
		path := a.get("FileName", "filepath", "file_path")
		if fh := a.get("FileHandle", "file_handle"); fh != "" && path != "" && len(h.files) < maxSeen {
			h.files[fh] = path
		}
		if !c.ok() {
			return
		}
		status := strings.ToLower(a.get("StatusInfo", "status_info"))
		if s := flagValue(c.Flags, "status_info"); s != "" {
			status = strings.ToLower(s)
		}
		created := status == "file_created" || status == "file_overwritten" || status == "file_superseded"
		disp, dispOK := jval(a.get("CreateDisposition", "create_disposition")).int()
		if created || (writeAccess(a.get("DesiredAccess", "desired_access")) && (!dispOK || disp != 1)) {
			r.fileEvent(p, t, path, "")
		}
	case "NtWriteFile", "WriteFile":
		if !c.ok() {
			return
		}
		path := a.get("HandleName", "filepath")
		if path == "" {
			path = h.files[a.get("FileHandle", "file_handle")]
		}
		r.fileEvent(p, t, path, "")
	case "CopyFileA", "CopyFileW", "CopyFileExA", "CopyFileExW":
		if c.ok() {
			r.fileEvent(p, t, a.get("NewFileName", "newfilepath"), "")
		}
	case "MoveFileWithProgressW", "MoveFileWithProgressTransactedW", "MoveFileExA", "MoveFileExW", "MoveFileA", "MoveFileW":
		if c.ok() {
			r.fileEvent(p, t, a.get("NewFileName", "newfilepath"), a.get("ExistingFileName", "oldfilepath"))
		}
	case "URLDownloadToFileA", "URLDownloadToFileW":
		r.fileEvent(p, t, a.get("FileName", "filepath"), "")
	case "DeleteFileA", "DeleteFileW", "NtDeleteFile":
		if c.ok() {
			r.deleteEvent(p, t, a.get("FileName", "filepath"))
		}

	case "RegSetValueExA", "RegSetValueExW", "NtSetValueKey", "RegSetValueA", "RegSetValueW", "RegSetKeyValueA", "RegSetKeyValueW":
		if c.ok() {
			r.registryEvent(p, t, "registry_set", "SetValue", a.get("FullName", "regkey"),
				regDetails(a.get("Type", "reg_type"), a.get("Buffer", "Data", "value")))
		}
	case "RegCreateKeyExA", "RegCreateKeyExW", "NtCreateKey":
		if d, _ := jval(a.get("Disposition", "disposition")).int(); d == 1 && c.ok() {
			r.registryEvent(p, t, "registry_add", "CreateKey", a.get("FullName", "regkey", "ObjectAttributes"), "")
		}
	case "RegDeleteKeyA", "RegDeleteKeyW", "RegDeleteKeyExA", "RegDeleteKeyExW", "NtDeleteKey":
		if c.ok() {
			r.registryEvent(p, t, "registry_delete", "DeleteKey", a.get("FullName", "regkey"), "")
		}
	case "RegDeleteValueA", "RegDeleteValueW", "NtDeleteValueKey":
		if c.ok() {
			r.registryEvent(p, t, "registry_delete", "DeleteValue", a.get("FullName", "regkey"), "")
		}

	case "connect", "WSAConnect", "ConnectEx":
		ip, port := a.get("ip", "ip_address", "IPAddress"), a.get("port", "Port")
		r.connEvent(p, t, "tcp", ip, port, "")
	case "InternetConnectA", "InternetConnectW", "WinHttpConnect":
		host, port := a.get("ServerName", "hostname", "pswzServerName"), a.get("ServerPort", "port", "nServerPort")
		if _, err := netip.ParseAddr(host); err == nil {
			r.connEvent(p, t, "tcp", host, port, "")
		} else {
			r.connEvent(p, t, "tcp", "", port, host)
		}
	case "DnsQuery_A", "DnsQuery_W", "DnsQuery_UTF8", "DnsQueryEx", "getaddrinfo", "GetAddrInfoW", "GetAddrInfoExW", "gethostbyname":
		name := a.get("Name", "NodeName", "hostname", "QueryName", "HostName", "pName")
		if _, err := netip.ParseAddr(name); err != nil {
			r.dnsEvent(p, t, name)
		}

	case "NtOpenProcess", "OpenProcess":
		pid, ok := jval(a.get("ProcessIdentifier", "ProcessId", "process_identifier", "dwProcessId")).int()
		access := hexMask(a.get("DesiredAccess", "desired_access", "dwDesiredAccess"))
		if ph := a.get("ProcessHandle", "process_handle"); ph != "" && ok && len(h.procs) < maxSeen {
			h.procs[ph], h.access[ph] = pid, access
		}
		if ok && pid != p.pid && pid > 4 && c.ok() {
			r.accessEvent(p, t, pid, access, "")
		}
	case "WriteProcessMemory", "NtWriteVirtualMemory":
		if pid, ok := r.targetPID(p, h, a); ok && c.ok() {
			r.accessEvent(p, t, pid, h.access[a.get("ProcessHandle", "process_handle")], api)
		}
	case "CreateRemoteThread", "CreateRemoteThreadEx", "NtCreateThreadEx", "RtlCreateUserThread", "NtCreateThread",
		"NtQueueApcThread", "NtQueueApcThreadEx", "QueueUserAPC":
		if pid, ok := r.targetPID(p, h, a); ok && c.ok() {
			start := a.get("StartRoutine", "StartAddress", "ApcRoutine", "function_address", "start_routine", "lpStartAddress")
			r.threadEvent(p, t, pid, start, a.get("ThreadId", "thread_identifier"), api)
		}
	case "CreateProcessInternalW", "CreateProcessInternalA", "NtCreateUserProcess", "CreateProcessWithTokenW", "CreateProcessWithLogonW":
		pid, ok := jval(a.get("ProcessId", "process_identifier")).int()
		if ph := a.get("ProcessHandle", "process_handle"); ph != "" && ok && len(h.procs) < maxSeen {
			h.procs[ph] = pid
		}
		if ok && pid > 0 && r.byPID[pid] == nil && c.ok() && len(r.byPID) < maxSandboxProcesses {
			r.unmonitoredChild(p, t, pid, a.get("ApplicationName", "filepath", "ImagePathName"), a.get("CommandLine", "command_line"))
		}

	case "LdrLoadDll", "LoadLibraryA", "LoadLibraryW", "LoadLibraryExA", "LoadLibraryExW":
		if c.ok() {
			r.imageEvent(p, t, a.get("FileName", "module_name", "lpLibFileName", "ModuleName"))
		}
	case "DllLoadNotification":
		if strings.EqualFold(a.get("NotificationReason"), "load") || len(a) > 0 && strings.EqualFold(a[0].value, "load") {
			r.imageEvent(p, t, a.get("FullDllName", "DllName", "FileName"))
		}
	}
}

// flagValue reads one value of Cuckoo's call flags object.
func flagValue(flags jval, name string) string {
	s := string(flags)
	if !strings.HasPrefix(s, "{") {
		return ""
	}
	var a callArgs
	if a.UnmarshalJSON([]byte(s)) != nil {
		return ""
	}
	return a.get(name)
}

// writeAccess reports whether an access mask (hex) asks to write:
// GENERIC_WRITE, GENERIC_ALL, MAXIMUM_ALLOWED, FILE_WRITE_DATA or
// FILE_APPEND_DATA.
func writeAccess(mask string) bool {
	n, ok := jval(mask).int()
	if !ok {
		if n, err := strconv.ParseUint(strings.TrimSpace(mask), 16, 64); err == nil {
			return n&(0x40000000|0x10000000|0x02000000|0x2|0x4) != 0
		}
		return false
	}
	return n&(0x40000000|0x10000000|0x02000000|0x2|0x4) != 0
}

// hexMask writes an access mask as Sysmon does (0x1F3FFF); "" stays "".
func hexMask(s string) string {
	n, ok := jval(s).int()
	if !ok {
		return strings.TrimSpace(s)
	}
	return fmt.Sprintf("0x%X", n)
}

// targetPID is the process another process's call acts on: its ProcessId
// argument, else the pid its process handle was opened for. ok is false for
// the process itself or one unknown.
func (r *sandboxReader) targetPID(p *sbProcess, h *procHandles, a callArgs) (int64, bool) {
	pid, ok := jval(a.get("ProcessId", "process_identifier", "ProcessIdentifier", "pid")).int()
	if !ok {
		ph := a.get("ProcessHandle", "process_handle")
		switch strings.ToLower(ph) {
		case "0xffffffff", "0xffffffffffffffff", "-1", "":
			return 0, false
		}
		pid, ok = h.procs[ph]
	}
	return pid, ok && pid != p.pid && pid > 0
}

// cleanPath turns a monitor's file name into a path as Sysmon writes it
// (without the \??\ prefix); "" for what is not a file on a disk or share
// (pipes, devices, consoles).
func cleanPath(p string) string {
	p = strings.TrimSpace(p)
	for _, pre := range []string{`\??\`, `\\?\`} {
		p = strings.TrimPrefix(p, pre)
	}
	switch {
	case len(p) >= 3 && p[1] == ':' && (p[2] == '\\' || p[2] == '/'):
		return p
	case strings.HasPrefix(p, `\\`) && !strings.HasPrefix(p, `\\.\`):
		return p
	}
	return ""
}

func (r *sandboxReader) fileEvent(p *sbProcess, t time.Time, path, from string) {
	path = cleanPath(path)
	if path == "" || !r.once("f\x00"+guidOf(p)+"\x00"+strings.ToLower(path)) {
		return
	}
	e := r.newEvent(telemetry.KindOther, p, "file_event", t)
	setActor(&e, p)
	e.Fields.Set("TargetFilename", path)
	if from = cleanPath(from); from != "" {
		e.Fields.Set("SourceFilename", from)
	}
	if f := r.dropped[strings.ToLower(path)]; f != nil {
		if h := f.hashes(); h != "" {
			e.Fields.Set("Hashes", h)
		}
	}
	if len(r.fileSeen) < maxSeen {
		r.fileSeen[strings.ToLower(path)] = true
	}
	r.queue = append(r.queue, e)
}

func (r *sandboxReader) deleteEvent(p *sbProcess, t time.Time, path string) {
	path = cleanPath(path)
	if path == "" || !r.once("d\x00"+guidOf(p)+"\x00"+strings.ToLower(path)) {
		return
	}
	e := r.newEvent(telemetry.KindOther, p, "file_delete", t)
	setActor(&e, p)
	e.Fields.Set("TargetFilename", path)
	r.queue = append(r.queue, e)
}

// regHives shortens registry roots as Sysmon writes them.
var regHives = []struct{ long, short string }{
	{`HKEY_LOCAL_MACHINE`, `HKLM`}, {`HKEY_CURRENT_USER`, `HKCU`}, {`HKEY_USERS`, `HKU`},
	{`HKEY_CLASSES_ROOT`, `HKCR`}, {`HKEY_CURRENT_CONFIG`, `HKCC`},
	{`\REGISTRY\MACHINE`, `HKLM`}, {`\REGISTRY\USER`, `HKU`},
}

// regTarget is a monitor's registry name as Sysmon's TargetObject.
func regTarget(k string) string {
	k = strings.TrimSpace(k)
	for _, h := range regHives {
		if len(k) >= len(h.long) && strings.EqualFold(k[:len(h.long)], h.long) {
			return h.short + k[len(h.long):]
		}
	}
	return k
}

// regDetails writes a value as Sysmon's Details does: DWORD (0x…) and
// QWORD (0x…) for numbers, "Binary Data" for binary ones, the text
// otherwise.
func regDetails(typ, data string) string {
	switch strings.ToUpper(strings.TrimSpace(typ)) {
	case "4", "REG_DWORD", "5", "REG_DWORD_BIG_ENDIAN":
		if n, ok := jval(data).int(); ok {
			return fmt.Sprintf("DWORD (0x%08x)", uint32(n))
		}
	case "11", "REG_QWORD":
		if n, ok := jval(data).int(); ok {
			return fmt.Sprintf("QWORD (0x%08x-0x%08x)", uint32(uint64(n)>>32), uint32(n))
		}
	case "3", "REG_BINARY":
		return "Binary Data"
	}
	return data
}

func (r *sandboxReader) registryEvent(p *sbProcess, t time.Time, category, eventType, key, details string) {
	key = regTarget(key)
	if key == "" || !r.once("r\x00"+guidOf(p)+"\x00"+eventType+"\x00"+strings.ToLower(key)+"\x00"+details) {
		return
	}
	e := r.newEvent(telemetry.KindOther, p, category, t)
	e.Fields.Set("EventType", eventType)
	setActor(&e, p)
	e.Fields.Set("TargetObject", key)
	if details != "" {
		e.Fields.Set("Details", details)
	}
	r.queue = append(r.queue, e)
}

// connEvent queues an outbound connection to ip (or host) and port; it
// returns the event queued, nil when it was one already made.
func (r *sandboxReader) connEvent(p *sbProcess, t time.Time, proto, ip, port, host string) *telemetry.Event {
	if ip == "" && host == "" {
		return nil
	}
	if n, ok := jval(port).int(); ok {
		port = strconv.FormatInt(n, 10)
	}
	if !r.once("n\x00" + guidOf(p) + "\x00" + proto + "\x00" + ip + "\x00" + host + "\x00" + port) {
		return nil
	}
	if len(r.netSeen) < maxSeen {
		if ip != "" {
			r.netSeen[ip+":"+port] = true
		}
		if host != "" {
			r.netSeen[strings.ToLower(host)+":"+port] = true
		}
	}
	e := r.newEvent(telemetry.KindOther, p, "network_connection", t)
	setActor(&e, p)
	e.Fields.Set("Protocol", proto)
	e.Fields.Set("Initiated", "true")
	if ip != "" {
		e.Fields.Set("DestinationIp", ip)
		if a, err := netip.ParseAddr(ip); err == nil {
			e.Fields.Set("DestinationIsIpv6", strconv.FormatBool(a.Is6() && !a.Is4In6()))
		}
	}
	if host != "" {
		e.Fields.Set("DestinationHostname", host)
	}
	if port != "" {
		e.Fields.Set("DestinationPort", port)
	}
	r.queue = append(r.queue, e)
	return &r.queue[len(r.queue)-1]
}

func (r *sandboxReader) dnsEvent(p *sbProcess, t time.Time, name string) {
	name = strings.TrimSpace(name)
	if name == "" || !r.once("q\x00"+guidOf(p)+"\x00"+strings.ToLower(name)) {
		return
	}
	if len(r.dnsSeen) < maxSeen {
		r.dnsSeen[strings.ToLower(name)] = true
	}
	e := r.newEvent(telemetry.KindOther, p, "dns_query", t)
	setActor(&e, p)
	e.Fields.Set("QueryName", name)
	if ans := r.dnsAnswers[strings.ToLower(name)]; len(ans) > 0 {
		e.Fields.Set("QueryStatus", "0")
		e.Fields.Set("QueryResults", strings.Join(ans, ";"))
	}
	r.queue = append(r.queue, e)
}

// setTarget names the source and target processes of an access or a
// remote thread as Sysmon does.
func (r *sandboxReader) setTarget(e *telemetry.Event, p *sbProcess, pid int64) {
	e.Fields.Set("SourceProcessGuid", p.guid)
	e.Fields.Set("SourceProcessId", strconv.FormatInt(p.pid, 10))
	e.Fields.Set("SourceImage", p.path)
	if tp := r.byPID[pid]; tp != nil {
		e.Fields.Set("TargetProcessGuid", tp.guid)
	}
	e.Fields.Set("TargetProcessId", strconv.FormatInt(pid, 10))
	if tp := r.byPID[pid]; tp != nil {
		e.Fields.Set("TargetImage", tp.path)
	}
	if p.user != "" {
		e.Fields.Set("SourceUser", p.user)
	}
}

// accessEvent queues p opening (or writing into) process pid; api names
// the call that wrote into it, "" for an open.
func (r *sandboxReader) accessEvent(p *sbProcess, t time.Time, pid int64, access, api string) {
	if !r.once(fmt.Sprintf("a\x00%s\x00%d\x00%s\x00%s", guidOf(p), pid, access, api)) {
		return
	}
	e := r.newEvent(telemetry.KindOther, p, "process_access", t)
	r.setTarget(&e, p, pid)
	if access != "" {
		e.Fields.Set("GrantedAccess", access)
	}
	if api != "" {
		e.Fields.Set("CallTrace", api)
	}
	r.queue = append(r.queue, e)
}

// threadEvent queues p starting a thread (or queueing an APC) in process
// pid.
func (r *sandboxReader) threadEvent(p *sbProcess, t time.Time, pid int64, start, tid, api string) {
	if !r.once(fmt.Sprintf("t\x00%s\x00%d\x00%s\x00%s", guidOf(p), pid, start, api)) {
		return
	}
	e := r.newEvent(telemetry.KindOther, p, "create_remote_thread", t)
	r.setTarget(&e, p, pid)
	if start != "" {
		e.Fields.Set("StartAddress", start)
	}
	if tid != "" {
		e.Fields.Set("NewThreadId", tid)
	}
	e.Fields.Set("StartFunction", api)
	r.queue = append(r.queue, e)
}

func (r *sandboxReader) imageEvent(p *sbProcess, t time.Time, name string) {
	name = strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(name, `\??\`), `\\?\`))
	if name == "" || !r.once("i\x00"+guidOf(p)+"\x00"+strings.ToLower(name)) {
		return
	}
	e := r.newEvent(telemetry.KindOther, p, "image_load", t)
	setActor(&e, p)
	e.Fields.Set("ImageLoaded", name)
	r.queue = append(r.queue, e)
}

// unmonitoredChild queues the start of a process p created that the
// report does not follow.
func (r *sandboxReader) unmonitoredChild(p *sbProcess, t time.Time, pid int64, path, cmdline string) {
	c := &sbProcess{index: -1, pid: pid, ppid: p.pid, path: path, cmdline: cmdline, first: t, parent: p, user: p.user}
	if c.path == "" {
		c.path = firstWord(cmdline)
	}
	c.name = baseName(c.path)
	c.guid = fmt.Sprintf("%s/%d", r.runID, pid)
	r.byPID[pid] = c
	p.children = append(p.children, c)
	r.d.treeOnly = append(r.d.treeOnly, c)
	r.queue = append(r.queue, r.execEvent(c))
}

// firstWord is a command line's program.
func firstWord(cmd string) string {
	cmd = strings.TrimSpace(cmd)
	if strings.HasPrefix(cmd, `"`) {
		if i := strings.IndexByte(cmd[1:], '"'); i >= 0 {
			return cmd[1 : i+1]
		}
	}
	if i := strings.IndexByte(cmd, ' '); i >= 0 {
		return cmd[:i]
	}
	return cmd
}

func guidOf(p *sbProcess) string {
	if p == nil {
		return ""
	}
	return p.guid
}
