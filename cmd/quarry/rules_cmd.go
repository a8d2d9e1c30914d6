package main

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/detections/ruleset"
	"github.com/quarry-sec/quarry/tables/ioa"
)

func (a *app) rulesCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rules",
		Short: "Detection rules: lint, list, test",
	}
	cmd.AddCommand(a.rulesLintCommand(), a.rulesListCommand(), a.rulesTestCommand())
	return cmd
}

func (a *app) rulesLintCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "lint PATH...",
		Short: "Check rule files: errors (exit 1) and warnings, with file:line",
		Long: `Parse and compile Sigma rule files or folders and report every problem with its
file and line: an unknown modifier or a broken condition is an error (exit 1), a
technique unknown to the loaded ATT&CK is a warning.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{errors.New("lint: give rule files or folders")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			kb, err := a.knowledgeBase()
			if err != nil {
				return err
			}
			res, err := ruleset.Load(ruleset.Config{Custom: args, KB: kb})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			for _, e := range res.Errors {
				fmt.Fprintf(w, "error: %v\n", e)
			}
			for _, e := range res.Warnings {
				fmt.Fprintf(w, "warning: %v\n", e)
			}
			for _, e := range res.Skipped {
				fmt.Fprintf(w, "notice: %v\n", e)
			}
			fmt.Fprintf(w, "%d file(s): %d rule(s) loaded, %d error(s), %d warning(s), %d skipped\n",
				res.Files, len(res.Rules), len(res.Errors), len(res.Warnings), len(res.Skipped))
			if len(res.Errors) > 0 {
				return fmt.Errorf("%d rule error(s)", len(res.Errors))
			}
			return nil
		},
	}
}

func (a *app) rulesListCommand() *cobra.Command {
	var rf ruleFlags
	cmd := &cobra.Command{
		Use:   "list [rule flags]",
		Short: "List the rules that would run: id, level, confidence, techniques, title, author",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rules, _, err := a.loadRules(rf, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSOURCE\tLEVEL\tCONFIDENCE\tTECHNIQUES\tTITLE\tAUTHOR")
			for _, r := range rules {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Source, r.Severity, r.Confidence,
					strings.Join(ioa.TechniqueIDs(r), ","), oneLine(r.Title, 70), oneLine(r.Author, 40))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%d rules\n", len(rules))
			return nil
		},
	}
	rf.add(cmd)
	return cmd
}

func (a *app) rulesTestCommand() *cobra.Command {
	var rf ruleFlags
	var regression string
	var verbose bool
	cmd := &cobra.Command{
		Use:   "test --regression DIR [rule flags]",
		Short: "Run SigmaHQ-style regression data against the rules",
		Long: `Run regression data laid out as SigmaHQ's regression_data: each info.yml names a
rule id and the expected match_count over the events beside it. Ends with the line
'N passed, N failed' (and N skipped); exits 1 when any case fails.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if regression == "" {
				return usageError{errors.New("test: --regression DIR is required")}
			}
			rules, _, err := a.loadRules(rf, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			res, err := detections.RunRegression(regression, rules...)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			for _, c := range res.Cases {
				switch {
				case c.Skipped:
					if verbose {
						fmt.Fprintf(w, "SKIP %s %s: %s\n", c.RuleID, c.Title, c.Reason)
					}
				case !c.Pass:
					fmt.Fprintf(w, "FAIL %s %s (%s): %s\n", c.RuleID, c.Title, c.Dir, c.Reason)
				case verbose:
					fmt.Fprintf(w, "ok   %s %s: %d hit(s)\n", c.RuleID, c.Title, c.Got)
				}
			}
			fmt.Fprintf(w, "%d passed, %d failed, %d skipped\n", res.Passed, res.Failed, res.Skipped)
			if len(res.Cases) == 0 {
				return fmt.Errorf("%s: no regression case (info.yml) found", regression)
			}
			if res.Failed > 0 {
				return fmt.Errorf("%d regression case(s) failed", res.Failed)
			}
			return nil
		},
	}
	rf.add(cmd)
	cmd.Flags().StringVar(&regression, "regression", "", "regression data folder (e.g. sigma/regression_data)")
	cmd.Flags().BoolVar(&verbose, "verbose-cases", false, "also list passed and skipped cases")
	return cmd
}

// attackLayerCommand writes a coverage layer: enabled rules per technique.
func (a *app) attackLayerCommand() *cobra.Command {
	var rf ruleFlags
	var coverage bool
	var out, version string
	cmd := &cobra.Command{
		Use:   "layer [--coverage] [rule flags] [--attack 18.1|19] [--out FILE]",
		Short: "Write an ATT&CK Navigator layer (4.5): rules covering each technique",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The coverage layer is the one this command makes (scan --layer
			// makes the hits layer); --coverage is accepted for scripts.
			_ = coverage
			newLayer, err := layerMaker(version)
			if err != nil {
				return err
			}
			kb, err := a.knowledgeBase()
			if err != nil {
				return err
			}
			rules, _, err := a.loadRules(rf, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			scores := map[string]attack.LayerScore{}
			for _, r := range rules {
				for _, id := range ioa.TechniqueIDs(r) {
					s := scores[id]
					s.Score++
					s.Names = append(s.Names, r.Title)
					scores[id] = s
				}
			}
			l := newLayer(kb, "Quarry detection coverage",
				fmt.Sprintf("Enabled rules per technique (%d rules)", len(rules)), "enabled rules", scores)
			if out == "" || out == "-" {
				return l.Write(cmd.OutOrStdout())
			}
			if err := writeLayerFile(out, l); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "coverage layer of %d techniques written to %s\n", len(scores), out)
			return nil
		},
	}
	rf.add(cmd)
	cmd.Flags().BoolVar(&coverage, "coverage", true, "score = enabled rules per technique (the default and only layer here; 'scan --layer' makes the hits layer)")
	cmd.Flags().StringVar(&version, "attack", "18.1", "ATT&CK version of the layer: 18.1 or 19 (v19 IDs such as T1685 land on the technique they replaced in 18.1)")
	cmd.Flags().StringVarP(&out, "out", "o", "", "write to FILE instead of standard output")
	return cmd
}

// layerMaker returns the layer constructor of an ATT&CK version flag.
func layerMaker(version string) (func(kb *attack.KB, name, description, scoreLabel string, scores map[string]attack.LayerScore) *attack.Layer, error) {
	switch version {
	case "18.1", "18", "":
		return attack.NewLayer, nil
	case "19", "19.0":
		return attack.NewLayerV19, nil
	}
	return nil, usageError{fmt.Errorf("--attack %q: want 18.1 or 19", version)}
}
