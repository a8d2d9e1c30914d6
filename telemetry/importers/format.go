package importers

import (
	"fmt"
	"strings"
)

// Format names a recording's layout. Its string is the CLI's --format value.
type Format string

// The formats Open reads.
const (
	// FormatAuto asks Open to detect the format from the content.
	FormatAuto Format = "auto"
	// FormatSysmonEVTX is a Windows event log file ("ElfFile\x00" magic):
	// Sysmon, Security (4688/4689), PowerShell or any other channel.
	FormatSysmonEVTX Format = "sysmon-evtx"
	// FormatSysmonJSON is Windows events as JSON: either one flat object per
	// line (EventData fields at top level beside EventID, Channel, Hostname,
	// @timestamp, as OTRF Security-Datasets ship them), or nested
	// {"Event": {"System": …, "EventData": …}} objects, one per line,
	// pretty-printed one after another, or in an array. Sysmon for Linux
	// events in the same shapes are read too (Source sysmon_linux).
	FormatSysmonJSON Format = "sysmon-json"
	// FormatAuditd is a raw Linux audit log (type=SYSCALL msg=audit(…): …);
	// each successful execve event (SYSCALL, EXECVE, CWD, PROCTITLE records
	// sharing a serial) becomes one exec Event.
	FormatAuditd Format = "auditd"
	// FormatAuditdJSON is one JSON object per audit event, per line, with the
	// records by type (SYSCALL, EXECVE, CWD, PROCTITLE) and argv/cmdline.
	FormatAuditdJSON Format = "auditd-json"
	// FormatSysmonLinuxSyslog is Sysmon for Linux's XML events as written to
	// syslog, one <Event> per line after the syslog prefix.
	FormatSysmonLinuxSyslog Format = "sysmon-linux-syslog"
)

var formatDocs = []struct {
	f   Format
	doc string
}{
	{FormatSysmonEVTX, "Windows EVTX event log (Sysmon, Security 4688/4689, PowerShell, any channel)"},
	{FormatSysmonJSON, "Windows events as JSON: flat lines (OTRF style) or nested {\"Event\":{\"System\",\"EventData\"}} objects; Sysmon for Linux too"},
	{FormatAuditd, "raw Linux audit log (type=SYSCALL msg=audit(...)): execve, connect/bind/accept, opens for writing, unlink, rename, module loads"},
	{FormatAuditdJSON, "Linux audit events as JSON lines (SYSCALL, EXECVE, CWD, PROCTITLE per object)"},
	{FormatSysmonLinuxSyslog, "Sysmon for Linux XML events in syslog lines"},
	{FormatSandboxReport, "CAPE or Cuckoo sandbox JSON report (report.json): processes, API behaviour, network, dropped files, signatures"},
}

// Formats lists the formats Open reads, without FormatAuto, in a stable
// order for the CLI's --format flag.
func Formats() []Format {
	out := make([]Format, len(formatDocs))
	for i, d := range formatDocs {
		out[i] = d.f
	}
	return out
}

// Description is a one-line description of the format for help texts.
func (f Format) Description() string {
	if f == FormatAuto {
		return "detect the format from the file's first bytes"
	}
	for _, d := range formatDocs {
		if d.f == f {
			return d.doc
		}
	}
	return ""
}

// ParseFormat turns a --format value into a Format; "" and "auto" mean
// FormatAuto.
func ParseFormat(s string) (Format, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" || s == string(FormatAuto) {
		return FormatAuto, nil
	}
	for _, d := range formatDocs {
		if string(d.f) == s {
			return d.f, nil
		}
	}
	names := make([]string, 0, len(formatDocs)+1)
	names = append(names, string(FormatAuto))
	for _, d := range formatDocs {
		names = append(names, string(d.f))
	}
	return "", fmt.Errorf("importers: unknown format %q (want one of %s)", s, strings.Join(names, ", "))
}
