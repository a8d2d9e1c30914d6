package main

import (
	"errors"
	"flag"
	"io"
	"testing"
	"time"
)

func TestParseOsqueryFlags(t *testing.T) {
	// What osqueryd passes to an autoloaded extension.
	o, err := parseFlags([]string{"--socket", "/var/osquery/osquery.em", "--timeout", "3", "--interval", "5", "--verbose"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.socket != "/var/osquery/osquery.em" || o.timeout != 3*time.Second || o.interval != 5*time.Second || !o.verbose {
		t.Errorf("parsed %+v", o)
	}
	if o.collect != "auto" || !o.detect || o.maxRows != 1_000_000 {
		t.Errorf("defaults %+v", o)
	}
	o, err = parseFlags([]string{"-socket=/s", "-timeout=1500ms", "--interval=0.5", "--collect", "off", "--data-dir", "/d"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.timeout != 1500*time.Millisecond || o.interval != 500*time.Millisecond || o.collect != "off" || o.dataDir != "/d" {
		t.Errorf("parsed %+v", o)
	}
}

func TestParseFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--socket", "/s", "--timeout", "0"},
		{"--socket", "/s", "--timeout", "soon"},
		{"--socket", "/s", "--collect", "audit"},
		{"--socket", "/s", "extra"},
		{"--socket", "/s", "--bogus"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) succeeded", args)
		}
	}
	if _, err := parseFlags([]string{"-h"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
	if o, err := parseFlags([]string{"--version"}, io.Discard); err != nil || !o.version {
		t.Errorf("--version: %v", err)
	}
}

func TestExitCodes(t *testing.T) {
	if c := run([]string{"--version"}, io.Discard, io.Discard); c != 0 {
		t.Errorf("--version: exit %d", c)
	}
	if c := run([]string{"--timeout", "3"}, io.Discard, io.Discard); c != 2 {
		t.Errorf("no socket: exit %d, want 2", c)
	}
	if c := run([]string{"--socket", t.TempDir() + "/none.em", "--timeout", "0.1", "--data-dir", t.TempDir(), "--collect", "off"}, io.Discard, io.Discard); c != 1 {
		t.Errorf("no osqueryd: exit %d, want 1", c)
	}
}
