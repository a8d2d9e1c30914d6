package agent

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/quarry-sec/quarry/fleet/osqwire"
)

// OsqueryCompatVersion is the osquery version whose TLS API and pack format
// the agent speaks; enrollment reports it as osquery_info.version, with
// Quarry's own version beside it.
const OsqueryCompatVersion = "5.0.0"

// hostDetails builds the host_details of an enroll request, as osquery sends
// them (os_version, osquery_info, system_info, platform_info) plus
// quarry_info.
func hostDetails(cfg *Config, instanceID string, start time.Time) map[string]osqwire.Details {
	osv := osRelease()
	hostname, _ := os.Hostname()
	uuid := machineID()
	return map[string]osqwire.Details{
		"os_version": {
			"name":          firstNonEmpty(osv["NAME"], runtime.GOOS),
			"version":       osv["VERSION"],
			"platform":      firstNonEmpty(osv["ID"], runtime.GOOS),
			"platform_like": osv["ID_LIKE"],
			"codename":      osv["VERSION_CODENAME"],
			"build":         osv["BUILD_ID"],
			"major":         majorVersion(osv["VERSION_ID"]),
			"arch":          runtime.GOARCH,
		},
		"osquery_info": {
			"version":        OsqueryCompatVersion,
			"quarry_version": cfg.Version,
			"build_platform": runtime.GOOS,
			"instance_id":    instanceID,
			"uuid":           uuid,
			"pid":            strconv.Itoa(os.Getpid()),
			"start_time":     strconv.FormatInt(start.Unix(), 10),
			"extensions":     "active",
		},
		"system_info": {
			"hostname":          hostname,
			"computer_name":     hostname,
			"uuid":              uuid,
			"cpu_type":          runtime.GOARCH,
			"cpu_logical_cores": strconv.Itoa(runtime.NumCPU()),
		},
		"platform_info": {"vendor": runtime.GOOS},
		"quarry_info":   {"version": cfg.Version},
	}
}

// osRelease reads /etc/os-release (empty elsewhere).
func osRelease() map[string]string {
	out := map[string]string{}
	f, err := os.Open("/etc/os-release")
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok {
			out[k] = strings.Trim(v, `"'`)
		}
	}
	return out
}

// machineID is the host's stable id (/etc/machine-id) when there is one.
func machineID() string {
	for _, p := range []string{"/etc/machine-id", "/var/lib/dbus/machine-id"} {
		if b, err := os.ReadFile(p); err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	return ""
}

func majorVersion(v string) string {
	major, _, _ := strings.Cut(v, ".")
	return major
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	return h
}

// platformType is osquery's platform_type: the bitmask of
// osquery/core/system.h (posix 0x01, windows 0x02, linux 0x08, darwin 0x10,
// freebsd 0x20), in decimal.
func platformType(goos string) string {
	switch goos {
	case "windows":
		return "2"
	case "linux":
		return "9"
	case "darwin":
		return "17"
	case "freebsd":
		return "33"
	default:
		return "1"
	}
}
