package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/quarry-sec/quarry/detections/packs"
)

func (a *app) packsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "packs",
		Short: "osquery packs of Quarry's scheduled detection queries",
	}
	var out string
	export := &cobra.Command{
		Use:   "export [--out FILE]",
		Short: "Write Quarry's detection pack (osquery pack JSON)",
		Long: `Write Quarry's detection pack as osquery reads it: scheduled queries joining
ioa_hits and quarry_process_events with the attack_* tables (new high-severity
hits with technique and tactic names, hits per technique per hour, processes
tagged with a technique but no alert, coverage). Add it to osqueryd's config
under "packs": {"` + packs.Name + `": "/etc/osquery/packs/` + packs.Name + `.conf"}.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p := packs.Detection()
			if out == "" || out == "-" {
				return p.Write(cmd.OutOrStdout())
			}
			f, err := os.Create(out)
			if err != nil {
				return fmt.Errorf("packs export: %w", err)
			}
			if err := p.Write(f); err != nil {
				f.Close()
				return fmt.Errorf("packs export %s: %w", out, err)
			}
			if err := f.Close(); err != nil {
				return fmt.Errorf("packs export %s: %w", out, err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "pack %s (%d queries) written to %s\n", packs.Name, len(p.Queries), out)
			return nil
		},
	}
	export.Flags().StringVarP(&out, "out", "o", "", "write to FILE instead of standard output")
	cmd.AddCommand(export)
	return cmd
}
