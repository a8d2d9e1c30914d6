// Command quarry-bench is Quarry's load generator, apart from the product
// command line: `quarry-bench fleet` simulates osquery hosts against a
// fleet server (one it starts — SQLite, PostgreSQL, or several replicas on
// one PostgreSQL behind HAProxy — or a running one on loopback) and
// reports throughput, latency and lost rows. It starts the servers with the
// quarry binary beside it (or on $PATH, or --quarry).
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// usageError is a bad command line: exit status 2.
type usageError struct{ error }

// run executes the command line and returns the exit code: 0, 1 for a
// failure, 2 for a usage error.
func run(args []string, stdout, stderr io.Writer) int {
	log := zerolog.New(zerolog.ConsoleWriter{Out: stderr, NoColor: true, TimeFormat: time.TimeOnly}).With().Timestamp().Logger()
	root := &cobra.Command{
		Use:           "quarry-bench",
		Short:         "Load tests of Quarry's parts (not part of the product command line)",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(fleetCommand(log))
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.Execute(); err != nil {
		var ue usageError
		if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown ") || strings.Contains(err.Error(), "flag") {
			fmt.Fprintf(stderr, "quarry-bench: %v\nRun 'quarry-bench --help' for usage.\n", err)
			return 2
		}
		fmt.Fprintf(stderr, "quarry-bench: %v\n", err)
		return 1
	}
	return 0
}
