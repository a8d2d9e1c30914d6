package main

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// A flag's help names the value it takes, if any, as it is: a backquoted
// word in the usage would be shown as the flag's value name ("--coverage
// scan --layer"), and a default the flag does not really have is not shown.
func TestFlagHelpValueNames(t *testing.T) {
	a := &app{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) {
			name, _ := pflag.UnquoteUsage(f)
			if f.Value.Type() == "bool" && name != "" {
				t.Errorf("%s --%s: a bool flag shown as taking %q", c.CommandPath(), f.Name, name)
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(a.rootCommand())

	out, _, code := quarry(t, t.TempDir(), "", "scan", "--help")
	if code != 0 {
		t.Fatalf("scan --help: exit %d", code)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "--layer-attack") && strings.Contains(line, `(default "18.1")`) {
			t.Errorf("--layer-attack follows --attack, but its help shows a fixed default: %s", line)
		}
	}
}
