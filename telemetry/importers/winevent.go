package importers

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/quarry-sec/quarry/telemetry"
)

// winEvent turns one Windows event's fields into an Event. sysTime is the
// System TimeCreated when the reader has it already decoded (EVTX), else
// zero; recordID is the fallback record number (line or record ordinal).
//
// The mapping:
//   - Sysmon (any channel or provider naming Sysmon): EID 1 is KindExec
//     process_creation, EID 5 KindExit, the rest KindOther with the Sigma
//     category of their event ID. A Linux Image (or the Linux-Sysmon
//     channel) makes Source sysmon_linux.
//   - Security 4688 is KindExec process_creation (NewProcessName → Path,
//     hex NewProcessId/ProcessId → PID/PPID, ParentProcessName → ParentPath,
//     SubjectDomainName\SubjectUserName → Username, MandatoryLabel →
//     IntegrityLevel); 4689 is KindExit. Other Security events are KindOther
//     with Source windows.
//   - PowerShell 4104 is ps_script (4103 ps_module); anything else KindOther
//     with Source windows.
func (c *config) winEvent(f telemetry.Fields, sysTime time.Time, recordID int64, names *nameCache) (telemetry.Event, error) {
	var w winFields
	w.gather(f, names)
	idText := w[kEventID]
	if idText == "" {
		return telemetry.Event{}, fmt.Errorf("no EventID")
	}
	eid, err := strconv.Atoi(idText)
	if err != nil {
		return telemetry.Event{}, fmt.Errorf("field EventID: %q is not a number", idText)
	}
	channel := w[kChannel]
	provider := w[kProviderName]
	if provider == "" {
		if provider = w[kSourceName]; provider != "" {
			f.Set("Provider_Name", provider)
		}
	}
	host := w[kComputer]
	if host == "" {
		if host = w[kHostname]; host != "" {
			f.Set("Computer", host)
		}
	}

	var e telemetry.Event
	switch {
	case isSysmon(channel, provider):
		kind, cat := sysmonKind(eid)
		e = telemetry.NewEvent(kind, telemetry.SourceSysmon)
		e.Category = cat
		fillSysmon(&e, &w)
		if strings.HasPrefix(channel, "Linux-") || strings.HasPrefix(e.Path, "/") {
			e.Source = telemetry.SourceSysmonLinux
		}
	case channel == "Security":
		e = telemetry.NewEvent(telemetry.KindOther, telemetry.SourceWindows)
		fillSecurity(&e, eid, &w)
	case strings.Contains(channel, "PowerShell") || strings.Contains(provider, "PowerShell"):
		e = telemetry.NewEvent(telemetry.KindOther, telemetry.SourceWindows)
		e.Category = powershellCategories[eid]
	case strings.Contains(channel, "Windows Defender"):
		e = telemetry.NewEvent(telemetry.KindOther, telemetry.SourceWindows)
		joinSpacedNames(&f)
	default:
		e = telemetry.NewEvent(telemetry.KindOther, telemetry.SourceWindows)
	}
	e.EventID = eid
	e.Channel = channel
	e.Host = c.hostFor(host)
	e.Fields = f
	var utc bool
	var created time.Time
	e.Time, utc, created = eventTime(&w, sysTime)
	if c.clock != nil {
		switch {
		case utc && !created.IsZero() && isSysmon(channel, provider):
			c.clock.learn(e.Host, e.Time, created)
		case !utc:
			c.clock.fix(&e)
		}
	}
	e.RecordID = recordID
	if r := w[kEventRecordID]; r != "" {
		if n, err := strconv.ParseInt(r, 10, 64); err == nil {
			e.RecordID = n
		}
	}
	return e, nil
}

// joinSpacedNames renames fields whose names have spaces (Defender's
// "Threat Name", "Process Name") to the names without them SigmaHQ's rules
// use (ThreatName, ProcessName); a field of the joined name already present
// is kept and the spaced one dropped.
func joinSpacedNames(f *telemetry.Fields) {
	var spaced []string
	for _, x := range f.List() {
		if strings.Contains(x.Name, " ") {
			spaced = append(spaced, x.Name)
		}
	}
	for _, name := range spaced {
		v, _ := f.Get(name)
		f.Delete(name)
		joined := strings.ReplaceAll(name, " ", "")
		if _, ok := f.Get(joined); !ok {
			f.Set(joined, v)
		}
	}
}

func isSysmon(channel, provider string) bool {
	return strings.Contains(channel, "Sysmon") || strings.Contains(provider, "Sysmon")
}

// fillSysmon sets the typed process fields Sysmon records carry; any event
// ID may have some of them (ProcessId, Image, ProcessGuid, User).
func fillSysmon(e *telemetry.Event, w *winFields) {
	e.Path = w[kImage]
	e.PID = parseID(w[kProcessID])
	e.ProcessGUID = w[kProcessGUID]
	e.Username = w[kUser]
	if e.Kind != telemetry.KindExec {
		return
	}
	e.Cmdline = w[kCommandLine]
	e.Cwd = w[kCurrentDirectory]
	e.PPID = parseID(w[kParentProcessID])
	e.ParentPath = w[kParentImage]
	e.ParentCmdline = w[kParentCommandLine]
	e.ParentGUID = w[kParentProcessGUID]
	e.LogonID = w[kLogonID]
	e.IntegrityLevel = w[kIntegrityLevel]
	e.OriginalFileName = w[kOriginalFileName]
	e.Hashes = w[kHashes]
}

// fillSecurity maps Security 4688 (process created) and 4689 (exited).
func fillSecurity(e *telemetry.Event, eid int, w *winFields) {
	switch eid {
	case 4688:
		e.Kind, e.Source = telemetry.KindExec, telemetry.SourceSecurity
		e.Category = "process_creation"
		e.Path = w[kNewProcessName]
		e.PID = parseID(w[kNewProcessID])
		e.PPID = parseID(w[kProcessID])
		e.ParentPath = w[kParentProcessName]
		e.Cmdline = w[kCommandLine]
		e.Username = windowsUser(w[kSubjectDomainName], w[kSubjectUserName])
		e.LogonID = w[kSubjectLogonID]
		if t := w[kTargetUserName]; t != "" && t != "-" {
			e.Username = windowsUser(w[kTargetDomainName], t)
			e.LogonID = w[kTargetLogonID]
		}
		if l := w[kMandatoryLabel]; l != "" {
			e.IntegrityLevel = integrityLevel(l)
		}
	case 4689:
		e.Kind, e.Source = telemetry.KindExit, telemetry.SourceSecurity
		e.Category = "process_termination"
		e.Path = w[kProcessName]
		e.PID = parseID(w[kProcessID])
		e.ExitCode = parseID(w[kStatus])
		e.Username = windowsUser(w[kSubjectDomainName], w[kSubjectUserName])
		e.LogonID = w[kSubjectLogonID]
	}
}

// windowsUser joins a domain and user as DOMAIN\user, Sysmon's form.
func windowsUser(domain, user string) string {
	switch {
	case user == "" || user == "-":
		return ""
	case domain == "" || domain == "-":
		return user
	}
	return domain + `\` + user
}

// parseID reads a decimal or 0x-hex id; Unknown when absent or malformed.
func parseID(s string) int64 {
	if s == "" {
		return telemetry.Unknown
	}
	var n uint64
	var err error
	if len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		n, err = strconv.ParseUint(s[2:], 16, 64)
	} else {
		n, err = strconv.ParseUint(s, 10, 64)
	}
	if err != nil || n > 1<<63-1 {
		return telemetry.Unknown
	}
	return int64(n)
}

// eventTime picks the event's time: Sysmon's UtcTime (utc true), else the
// System TimeCreated, else the flat form's @timestamp or TimeCreated;
// created is the latter (zero when absent).
func eventTime(w *winFields, sysTime time.Time) (t time.Time, utc bool, created time.Time) {
	if !sysTime.IsZero() {
		created = sysTime.UTC()
	} else {
		for _, k := range [...]int{kSystemTime, kTimeCreatedSystemTime, kAtTimestamp, kTimeCreated} {
			if t, ok := parseWinTime(w[k]); ok {
				created = t
				break
			}
		}
	}
	if t, ok := parseWinTime(w[kUtcTime]); ok {
		return t, true, created
	}
	return created, false, created
}

// parseWinTime reads Sysmon's "2006-01-02 15:04:05.000" (UTC) or RFC 3339.
func parseWinTime(s string) (time.Time, bool) {
	if t, ok := parseSysmonTime(s); ok {
		return t, true
	}
	if len(s) < 19 {
		return time.Time{}, false
	}
	layout := time.RFC3339Nano
	if s[10] == ' ' {
		layout = "2006-01-02 15:04:05.999999999"
	}
	t, err := time.Parse(layout, s)
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}

// parseSysmonTime reads Sysmon's UtcTime, "2006-01-02 15:04:05.000", without
// the general layout parser (it is on every event of a recording); false
// for any other form, which parseWinTime then reads.
func parseSysmonTime(s string) (time.Time, bool) {
	if len(s) != 23 || s[4] != '-' || s[7] != '-' || s[10] != ' ' || s[13] != ':' || s[16] != ':' || s[19] != '.' {
		return time.Time{}, false
	}
	num := func(i, n int) (int, bool) {
		v := 0
		for _, c := range []byte(s[i : i+n]) {
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	year, ok1 := num(0, 4)
	month, ok2 := num(5, 2)
	day, ok3 := num(8, 2)
	hour, ok4 := num(11, 2)
	minute, ok5 := num(14, 2)
	sec, ok6 := num(17, 2)
	ms, ok7 := num(20, 3)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) || month < 1 || month > 12 || day < 1 ||
		day > daysIn(time.Month(month), year) || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, ms*1e6, time.UTC), true
}

// daysIn is the number of days of a month.
func daysIn(m time.Month, year int) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
