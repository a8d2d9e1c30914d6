package importers

import "github.com/quarry-sec/quarry/telemetry"

// sysmonCategories maps Sysmon event IDs to Sigma log source categories.
// EventID 12/13/14 are registry_add, registry_set and registry_rename (Sigma
// also groups them as registry_event).
var sysmonCategories = map[int]string{
	1:   "process_creation",
	2:   "file_change",
	3:   "network_connection",
	4:   "sysmon_status",
	5:   "process_termination",
	6:   "driver_load",
	7:   "image_load",
	8:   "create_remote_thread",
	9:   "raw_access_thread",
	10:  "process_access",
	11:  "file_event",
	12:  "registry_add",
	13:  "registry_set",
	14:  "registry_rename",
	15:  "create_stream_hash",
	16:  "sysmon_status",
	17:  "pipe_created",
	18:  "pipe_created",
	19:  "wmi_event",
	20:  "wmi_event",
	21:  "wmi_event",
	22:  "dns_query",
	23:  "file_delete",
	24:  "clipboard_capture",
	25:  "process_tampering",
	26:  "file_delete",
	27:  "file_block_executable",
	28:  "file_block_shredding",
	29:  "file_executable_detected",
	255: "sysmon_error",
}

// sysmonKind returns the kind and category of a Sysmon event.
func sysmonKind(eventID int) (telemetry.Kind, string) {
	switch eventID {
	case 1:
		return telemetry.KindExec, "process_creation"
	case 5:
		return telemetry.KindExit, "process_termination"
	}
	return telemetry.KindOther, sysmonCategories[eventID]
}

// powershellCategories maps PowerShell event IDs to Sigma categories.
var powershellCategories = map[int]string{
	4103: "ps_module",
	4104: "ps_script",
	400:  "ps_classic_start",
	600:  "ps_classic_provider_start",
	800:  "ps_classic_script",
}

// integrityLevels maps Security's MandatoryLabel SIDs to Sysmon's integrity
// level names.
var integrityLevels = map[string]string{
	"S-1-16-0":     "Untrusted",
	"S-1-16-4096":  "Low",
	"S-1-16-8192":  "Medium",
	"S-1-16-8448":  "MediumPlus",
	"S-1-16-12288": "High",
	"S-1-16-16384": "System",
	"S-1-16-20480": "Protected",
	"S-1-16-28672": "Secure",
}

// integrityLevel turns a MandatoryLabel into a level name; an unknown label
// is kept as it is.
func integrityLevel(label string) string {
	if l, ok := integrityLevels[label]; ok {
		return l
	}
	return label
}
