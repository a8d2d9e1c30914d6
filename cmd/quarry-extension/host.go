package main

import (
	"bufio"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// The helpers below match cmd/quarry's, so the extension and the CLI agree
// on a host's identity; the data directory differs only for root, where
// osqueryd runs the extension as a service without a home directory.

// hostIdentifier is this machine's host_identifier: its host name.
func hostIdentifier() string {
	h, err := os.Hostname()
	if err != nil {
		return "localhost"
	}
	return h
}

// bootTime reads the boot time from /proc/stat (Linux); zero elsewhere.
func bootTime() time.Time {
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

// systemDataDir is the data directory of an extension running as root.
const systemDataDir = "/var/lib/quarry"

// defaultDataDir is $QUARRY_DATA_DIR; else, as root on a Unix,
// /var/lib/quarry; else the user's data directory, as cmd/quarry picks it.
func defaultDataDir() string {
	if d := os.Getenv("QUARRY_DATA_DIR"); d != "" {
		return d
	}
	if runtime.GOOS != "windows" && os.Geteuid() == 0 {
		return systemDataDir
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
		return systemDataDir
	}
	return filepath.Join(home, ".local", "share", "quarry")
}
