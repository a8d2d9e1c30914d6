package detections

import (
	"strings"
	"unicode/utf8"

	"github.com/quarry-sec/quarry/detections/sigma"
	"github.com/quarry-sec/quarry/telemetry"
)

// logKey is what an event offers to rules' log sources: product (windows,
// linux, macos), category and service. Events with equal keys are matched
// by the same compiled matcher.
type logKey struct {
	product  string
	category string
	service  string
}

// clone returns k with its own copies of its strings.
func (k logKey) clone() logKey {
	return logKey{strings.Clone(k.product), strings.Clone(k.category), strings.Clone(k.service)}
}

// sysmonCategories maps Sysmon event ids (Windows and Linux) to Sigma
// categories.
var sysmonCategories = map[int]string{
	1: "process_creation", 2: "file_change", 3: "network_connection", 4: "sysmon_status",
	5: "process_termination", 6: "driver_load", 7: "image_load", 8: "create_remote_thread",
	9: "raw_access_thread", 10: "process_access", 11: "file_event", 12: "registry_add",
	13: "registry_set", 14: "registry_rename", 15: "create_stream_hash", 16: "sysmon_status",
	17: "pipe_created", 18: "pipe_created", 19: "wmi_event", 20: "wmi_event", 21: "wmi_event",
	22: "dns_query", 23: "file_delete", 24: "clipboard_capture", 25: "process_tampering",
	26: "file_delete_detected", 27: "file_block_executable", 28: "file_block_shredding",
	29: "file_executable_detected", 255: "sysmon_error",
}

// channelServices maps Windows channels (lower case) to Sigma services.
var channelServices = map[string]string{
	"security":                             "security",
	"system":                               "system",
	"application":                          "application",
	"microsoft-windows-sysmon/operational": "sysmon",
	"microsoft-windows-powershell/operational":                           "powershell",
	"windows powershell":                                                 "powershell-classic",
	"microsoft-windows-taskscheduler/operational":                        "taskscheduler",
	"microsoft-windows-wmi-activity/operational":                         "wmi",
	"microsoft-windows-windows defender/operational":                     "windefend",
	"microsoft-windows-windows firewall with advanced security/firewall": "firewall-as",
	"microsoft-windows-bits-client/operational":                          "bits-client",
	"microsoft-windows-codeintegrity/operational":                        "codeintegrity-operational",
	"microsoft-windows-dns-client/operational":                           "dns-client",
	"dns server":                         "dns-server",
	"microsoft-windows-ntlm/operational": "ntlm",
	"microsoft-windows-appxdeployment-server/operational":                      "appxdeployment-server",
	"microsoft-windows-appxdeploymentserver/operational":                       "appxdeployment-server", // the channel's Windows name
	"msexchange management":                                                    "msexchange-management",
	"microsoft-windows-smbclient/security":                                     "smbclient-security",
	"microsoft-windows-security-mitigations/kernel mode":                       "security-mitigations",
	"microsoft-windows-security-mitigations/user mode":                         "security-mitigations",
	"microsoft-windows-security-mitigations/kernelmode":                        "security-mitigations", // the channels' Windows names
	"microsoft-windows-security-mitigations/usermode":                          "security-mitigations",
	"microsoft-windows-terminalservices-localsessionmanager/operational":       "terminalservices-localsessionmanager",
	"microsoft-windows-driverframeworks-usermode/operational":                  "driver-framework",
	"microsoft-windows-printservice/admin":                                     "printservice-admin",
	"microsoft-windows-printservice/operational":                               "printservice-operational",
	"microsoft-windows-openssh/operational":                                    "openssh",
	"openssh/operational":                                                      "openssh", // Win32-OpenSSH's channel
	"microsoft-windows-diagnosis-scripted/operational":                         "diagnosis-scripted",
	"microsoft-windows-ldap-client/debug":                                      "ldap_debug",
	"microsoft-windows-applocker/exe and dll":                                  "applocker",
	"microsoft-windows-applocker/msi and script":                               "applocker",
	"microsoft-windows-shell-core/operational":                                 "shell-core",
	"microsoft-windows-capi2/operational":                                      "capi2",
	"microsoft-windows-certificateservicesclient-lifecycle-system/operational": "certificateservicesclient-lifecycle-system",
	"linux-sysmon/operational":                                                 "sysmon",
}

// keyOf derives an event's log key.
// channelService is channelServices[strings.ToLower(ch)], without
// allocating for the usual short ASCII channel names.
func channelService(ch string) string {
	var buf [96]byte
	if len(ch) > len(buf) {
		return channelServices[strings.ToLower(ch)]
	}
	b := buf[:len(ch)]
	for i := 0; i < len(ch); i++ {
		c := ch[i]
		if c >= utf8.RuneSelf {
			return channelServices[strings.ToLower(ch)]
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	return channelServices[string(b)]
}

func keyOf(ev *telemetry.Event) logKey {
	return keyWithService(ev, channelService(ev.Channel))
}

// keyWithService is keyOf with the service of the event's channel
// (channelService) given.
func keyWithService(ev *telemetry.Event, service string) logKey {
	k := logKey{product: productOf(ev), category: ev.Category, service: service}
	if ev.Source == telemetry.SourceAuditd {
		k.service = "auditd"
	}
	if k.category == "" {
		switch {
		case k.service == "sysmon" || ev.Source == telemetry.SourceSysmon || ev.Source == telemetry.SourceSysmonLinux:
			k.category = sysmonCategories[ev.EventID]
		case k.service == "security" && ev.EventID == 4688:
			k.category = "process_creation"
		case k.service == "powershell" && ev.EventID == 4104:
			k.category = "ps_script"
		case k.service == "powershell" && ev.EventID == 4103:
			k.category = "ps_module"
		case k.service == "powershell-classic" && ev.EventID == 400:
			k.category = "ps_classic_start"
		case k.service == "powershell-classic" && ev.EventID == 600:
			k.category = "ps_classic_provider_start"
		case k.service == "powershell-classic" && ev.EventID == 800:
			k.category = "ps_classic_script"
		case ev.Kind == telemetry.KindExec:
			k.category = "process_creation"
		case ev.Kind == telemetry.KindExit:
			k.category = "process_termination"
		}
	}
	return k
}

// productOf decides windows, linux or macos from the event's source, channel
// and path style.
func productOf(ev *telemetry.Event) string {
	switch ev.Source {
	case telemetry.SourceSysmon, telemetry.SourceSecurity:
		return "windows"
	case telemetry.SourceSysmonLinux:
		return "linux"
	}
	if strings.HasPrefix(strings.ToLower(ev.Channel), "linux-sysmon") {
		return "linux"
	}
	p := ev.Path
	if p == "" {
		p = ev.Fields.Value("Image")
	}
	switch {
	case len(p) >= 3 && p[1] == ':' && (p[2] == '\\' || p[2] == '/'), strings.HasPrefix(p, `\\`):
		return "windows"
	case strings.HasPrefix(p, "/"):
		for _, mac := range []string{"/Applications/", "/System/", "/Library/", "/Users/", "/private/", "/usr/libexec/", "/opt/homebrew/"} {
			if strings.HasPrefix(p, mac) {
				return "macos"
			}
		}
		return "linux"
	}
	if ev.Channel != "" || ev.EventID != 0 {
		return "windows"
	}
	switch ev.Source {
	case telemetry.SourceEBPF, telemetry.SourceCnProc, telemetry.SourceAuditd:
		return "linux"
	}
	return ""
}

// categoryMatches tells whether a rule category accepts an event category.
func categoryMatches(rule, ev string) bool {
	if rule == ev {
		return true
	}
	switch rule {
	case "registry_event":
		return strings.HasPrefix(ev, "registry_")
	case "registry_delete":
		return ev == "registry_add" // EventID 12 covers key/value deletion too
	case "file_delete":
		return ev == "file_delete_detected"
	}
	return false
}

// applies tells whether a rule's log source accepts events of key k.
func applies(ls sigma.Logsource, k logKey) bool {
	if ls.Product != "" && ls.Product != k.product {
		return false
	}
	if ls.Category != "" && !categoryMatches(ls.Category, k.category) {
		return false
	}
	if ls.Service != "" && ls.Service != k.service {
		// Linux auditd rules name "auditd"; Sysmon for Linux rules "sysmon".
		return false
	}
	return ls.Product != "" || ls.Category != "" || ls.Service != ""
}
