package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/quarry-sec/quarry/telemetry/collect"
)

// options are the command line: the flags osqueryd passes to an extension
// it autoloads (--socket, --timeout, --interval, --verbose) and Quarry's own,
// which only a manual start can set (an autoload file lists paths, no
// arguments), so each has a default that suits osqueryd.
type options struct {
	socket       string
	timeout      time.Duration
	interval     time.Duration
	verbose      bool
	dataDir      string
	collect      string
	detect       bool
	maxRows      int
	queryTimeout time.Duration
	version      bool
}

// parseFlags parses args. It returns flag.ErrHelp for -h.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	o := options{timeout: 3 * time.Second, interval: 3 * time.Second}
	fs := flag.NewFlagSet("quarry-extension", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: quarry-extension --socket PATH [flags]\n\n"+
			"Serves Quarry's tables to osquery as an extension. osqueryd starts it with\n"+
			"--extensions_autoload; osqueryi with --extension PATH.\n\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&o.socket, "socket", "", "osquery's extension manager socket (passed by osquery)")
	fs.Var((*seconds)(&o.timeout), "timeout", "seconds to wait for osquery's socket and for each call to osquery (passed by osquery)")
	fs.Var((*seconds)(&o.interval), "interval", "seconds between health pings to osquery (passed by osquery)")
	fs.BoolVar(&o.verbose, "verbose", false, "log debug detail to stderr (passed by osquery when it is verbose)")
	fs.StringVar(&o.dataDir, "data-dir", "", "Quarry's data directory: event store, ATT&CK updates, rules (default $QUARRY_DATA_DIR, else /var/lib/quarry as root, else the user's data directory)")
	fs.StringVar(&o.collect, "collect", collect.SourceAuto, "live process collector: auto (eBPF, else the process connector), ebpf, cnproc or off")
	fs.BoolVar(&o.detect, "detect", true, "run the IoA detection engine over collected events (fills ioa_hits)")
	fs.IntVar(&o.maxRows, "max-rows", 1_000_000, "most rows one osquery query may get from one table scan (0: no limit)")
	fs.DurationVar(&o.queryTimeout, "query-timeout", time.Minute, "longest one table scan may take")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.version {
		return o, nil
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.socket == "" {
		return o, errors.New("--socket is required (osquery passes it)")
	}
	switch o.collect {
	case collect.SourceAuto, collect.SourceEBPF, collect.SourceCnProc, "off":
	default:
		return o, fmt.Errorf("--collect %q: want auto, ebpf, cnproc or off", o.collect)
	}
	return o, nil
}

// seconds is a duration flag that takes osquery's plain seconds ("3") or a
// Go duration ("1500ms").
type seconds time.Duration

func (s *seconds) String() string { return time.Duration(*s).String() }

func (s *seconds) Set(v string) error {
	v = strings.TrimSpace(v)
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		if n <= 0 {
			return fmt.Errorf("%s: want a positive number of seconds", v)
		}
		*s = seconds(time.Duration(n * float64(time.Second)))
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return fmt.Errorf("%s: want seconds or a duration such as 1500ms", v)
	}
	*s = seconds(d)
	return nil
}
