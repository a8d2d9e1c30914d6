// Package benchload holds what Quarry's benchmarks share: the process's CPU
// time, and a load of loopback TCP connections made by a child process so
// that the benchmark's own CPU time is the collector's it measures.
package benchload

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// connectLoadEnv carries the load's duration to the child process.
const connectLoadEnv = "QUARRY_CONNECT_LOAD"

// ServeConnectLoad is the body of the test that RunConnectLoad starts in a
// child process: it connects to and accepts from a loopback listener as
// fast as it can for the duration the parent gave, and prints the number of
// connections. Run by the test binary itself, it skips.
func ServeConnectLoad(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv(connectLoadEnv))
	if err != nil {
		t.Skip("only run by a benchmark, through benchload.RunConnectLoad")
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	n := 0
	for end := time.Now().Add(d); time.Now().Before(end); n++ {
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		s.Close()
	}
	fmt.Printf("connections %d\n", n)
}

// RunConnectLoad runs the test binary's test named test (one calling
// ServeConnectLoad) in a child process for d, and returns the number of
// connections it made (one connect and one accept each).
func RunConnectLoad(test string, d time.Duration) (int, error) {
	cmd := exec.Command(os.Args[0], "-test.run", "^"+test+"$", "-test.v")
	cmd.Env = append(os.Environ(), connectLoadEnv+"="+d.String())
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("connect load: %w: %s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if n, ok := strings.CutPrefix(line, "connections "); ok {
			return strconv.Atoi(n)
		}
	}
	return 0, fmt.Errorf("connect load: no count in its output: %s", out)
}
