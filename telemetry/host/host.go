// Package host tells who this machine is to Quarry: its host_identifier,
// its boot time, and where Quarry keeps its data on it.
package host

import (
	"bufio"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Identifier is this machine's host_identifier: its host name.
func Identifier() string {
	h, err := os.Hostname()
	if err != nil {
		return "localhost"
	}
	return h
}

// BootTime reads the boot time from /proc/stat (Linux); zero elsewhere.
func BootTime() time.Time {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return time.Time{}
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "btime "); ok {
			if n, err := strconv.ParseInt(strings.TrimSpace(rest), 10, 64); err == nil {
				return time.Unix(n, 0)
			}
		}
	}
	return time.Time{}
}

// SystemDataDir is the data directory of Quarry running as root (osqueryd
// runs the extension as a service without a home directory).
const SystemDataDir = "/var/lib/quarry"

// DefaultDataDir is $QUARRY_DATA_DIR; else, as root on a Unix,
// /var/lib/quarry; else the user's data directory (XDG_DATA_HOME or
// ~/.local/share on Linux, Application Support on macOS, LocalAppData on
// Windows) plus "quarry". The CLI and the extension agree on it, so they
// share one store.
func DefaultDataDir() string {
	if d := os.Getenv("QUARRY_DATA_DIR"); d != "" {
		return d
	}
	if runtime.GOOS != "windows" && os.Geteuid() == 0 {
		return SystemDataDir
	}
	home, err := os.UserHomeDir()
	switch runtime.GOOS {
	case "windows":
		if d := os.Getenv("LocalAppData"); d != "" {
			return filepath.Join(d, "quarry")
		}
	case "darwin":
		if err == nil {
			return filepath.Join(home, "Library", "Application Support", "quarry")
		}
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "quarry")
	}
	if err != nil {
		return SystemDataDir
	}
	return filepath.Join(home, ".local", "share", "quarry")
}
