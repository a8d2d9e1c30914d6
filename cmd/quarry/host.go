package main

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"time"
)

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
