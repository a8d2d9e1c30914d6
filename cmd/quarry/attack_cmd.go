package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/quarry-sec/quarry/attack"
)

func (a *app) attackCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "attack",
		Short: "The MITRE ATT&CK knowledge base: show, search, update",
	}
	cmd.AddCommand(a.attackShowCommand(), a.attackSearchCommand(), a.attackUpdateCommand(), a.attackInfoCommand(), a.attackLayerCommand())
	return cmd
}

func (a *app) attackShowCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show a technique: tactics, description, detection, mitigations, groups",
		Long: `Show an ATT&CK technique by ID (T1059.001). Revoked or renumbered IDs, v18 or v19,
lead to their successor, and the output says so.`,
		Args: exactArgs(1, "show: give one technique ID, e.g. T1059.001"),
		RunE: func(cmd *cobra.Command, args []string) error {
			kb, err := a.knowledgeBase()
			if err != nil {
				return err
			}
			t, from, ok := kb.Resolve(args[0])
			if !ok {
				msg := fmt.Sprintf("no technique %s in ATT&CK %s", strings.ToUpper(args[0]), kb.Version())
				if hits := kb.Search(args[0], 3); len(hits) > 0 {
					ids := make([]string, len(hits))
					for i, h := range hits {
						ids[i] = h.ID + " " + h.Name
					}
					msg += " (closest: " + strings.Join(ids, "; ") + ")"
				}
				return errors.New(msg)
			}
			if asJSON {
				return writeTechniqueJSON(cmd.OutOrStdout(), kb, t, from)
			}
			writeTechnique(cmd.OutOrStdout(), kb, t, from)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func exactArgs(n int, msg string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{errors.New(msg)}
		}
		return nil
	}
}

func tacticNames(kb *attack.KB, shortnames []string) string {
	out := make([]string, 0, len(shortnames))
	for _, s := range shortnames {
		if t, ok := kb.Tactic(s); ok {
			out = append(out, fmt.Sprintf("%s (%s)", t.Name, t.ID))
		} else {
			out = append(out, s)
		}
	}
	return strings.Join(out, ", ")
}

func writeTechnique(w io.Writer, kb *attack.KB, t *attack.Technique, from string) {
	if from != "" {
		fmt.Fprintf(w, "%s redirects to %s\n\n", strings.ToUpper(from), t.ID)
	}
	fmt.Fprintf(w, "%s  %s\n", t.ID, t.Name)
	if t.NameV19 != "" && t.NameV19 != t.Name {
		fmt.Fprintf(w, "v19 name:     %s\n", t.NameV19)
	}
	if t.ParentID != "" {
		if p, ok := kb.Technique(t.ParentID); ok {
			fmt.Fprintf(w, "Sub-technique of %s %s\n", p.ID, p.Name)
		}
	}
	fmt.Fprintf(w, "Tactics:      %s\n", tacticNames(kb, t.Tactics))
	if len(t.TacticsV19) > 0 && strings.Join(t.TacticsV19, ",") != strings.Join(t.Tactics, ",") {
		fmt.Fprintf(w, "v19 tactics:  %s\n", tacticNames(kb, t.TacticsV19))
	}
	if len(t.Platforms) > 0 {
		fmt.Fprintf(w, "Platforms:    %s\n", strings.Join(t.Platforms, ", "))
	}
	fmt.Fprintf(w, "ATT&CK:       %s", t.AttackVersion)
	if t.Version != "" {
		fmt.Fprintf(w, " (technique v%s)", t.Version)
	}
	fmt.Fprintln(w)
	if t.Revoked || t.Deprecated {
		state := "revoked"
		if t.Deprecated {
			state = "deprecated"
		}
		fmt.Fprintf(w, "State:        %s", state)
		if next := firstNonEmpty(t.ReplacedByV19, t.ReplacedBy); next != "" {
			fmt.Fprintf(w, ", replaced by %s", next)
		}
		fmt.Fprintln(w)
	}
	if t.ReplacedByV19 != "" && !t.Revoked {
		fmt.Fprintf(w, "In v19:       revoked, replaced by %s\n", t.ReplacedByV19)
	}
	if t.URL != "" {
		fmt.Fprintf(w, "URL:          %s\n", t.URL)
	}
	if subs := subtechniques(kb, t.ID); len(subs) > 0 {
		fmt.Fprintf(w, "\nSub-techniques:\n")
		for _, s := range subs {
			fmt.Fprintf(w, "  %-10s %s\n", s.ID, s.Name)
		}
	}
	section(w, "Description", t.Description)
	section(w, "Detection", t.Detection)
	if len(t.DataComponents) > 0 {
		section(w, "Data components", strings.Join(t.DataComponents, ", "))
	}
	if ms := kb.MitigationsOf(t.ID); len(ms) > 0 {
		fmt.Fprintf(w, "\nMitigations (%d):\n", len(ms))
		for _, r := range ms {
			name := ""
			if m, ok := kb.Mitigation(r.SourceID); ok {
				name = m.Name
			}
			fmt.Fprintf(w, "  %-6s %s\n", r.SourceID, name)
			if r.Description != "" {
				fmt.Fprintf(w, "         %s\n", oneLine(r.Description, 200))
			}
		}
	}
	if gs := kb.GroupsUsing(t.ID); len(gs) > 0 {
		fmt.Fprintf(w, "\nGroups using it (%d):\n", len(gs))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, r := range gs {
			name := ""
			if g, ok := kb.Group(r.SourceID); ok {
				name = g.Name
			}
			fmt.Fprintf(tw, "  %s\t%s\n", r.SourceID, name)
		}
		tw.Flush()
	}
	if ss := kb.SoftwareUsing(t.ID); len(ss) > 0 {
		fmt.Fprintf(w, "\nSoftware using it: %d (see attack_software_techniques)\n", len(ss))
	}
}

func subtechniques(kb *attack.KB, id string) []attack.Technique {
	var out []attack.Technique
	for _, t := range kb.Techniques() {
		if t.ParentID == id && t.Live() {
			out = append(out, t)
		}
	}
	return out
}

func section(w io.Writer, title, text string) {
	if strings.TrimSpace(text) == "" {
		return
	}
	fmt.Fprintf(w, "\n%s:\n", title)
	width := terminalWidth(w)
	for _, para := range strings.Split(strings.TrimSpace(text), "\n") {
		if strings.TrimSpace(para) == "" {
			continue
		}
		for _, line := range wrap(strings.TrimSpace(para), width-2) {
			fmt.Fprintf(w, "  %s\n", line)
		}
	}
}

// terminalWidth is w's width in columns when it is a terminal, else 0 (no
// wrapping: a pipe gets whole paragraphs).
func terminalWidth(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return 0
	}
	if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 20 {
		return cols
	}
	return 80
}

// wrap breaks text at spaces into lines of at most width runes (a longer
// word stands alone); width ≤ 0 keeps it whole.
func wrap(text string, width int) []string {
	if width <= 0 {
		return []string{text}
	}
	var lines []string
	var cur strings.Builder
	n := 0
	for _, word := range strings.Fields(text) {
		wl := utf8.RuneCountInString(word)
		if n > 0 && n+1+wl > width {
			lines = append(lines, cur.String())
			cur.Reset()
			n = 0
		}
		if n > 0 {
			cur.WriteByte(' ')
			n++
		}
		cur.WriteString(word)
		n += wl
	}
	if n > 0 {
		lines = append(lines, cur.String())
	}
	return lines
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

type techniqueJSON struct {
	*attack.Technique
	RedirectedFrom string            `json:"redirected_from,omitempty"`
	Mitigations    []attack.Relation `json:"mitigations"`
	Groups         []attack.Relation `json:"groups"`
}

func writeTechniqueJSON(w io.Writer, kb *attack.KB, t *attack.Technique, from string) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(techniqueJSON{t, from, kb.MitigationsOf(t.ID), kb.GroupsUsing(t.ID)})
}

func (a *app) attackSearchCommand() *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "search TEXT",
		Short: "Find techniques by ID, name or description",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{errors.New("search: give the text to look for")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			kb, err := a.knowledgeBase()
			if err != nil {
				return err
			}
			text := strings.Join(args, " ")
			hits := kb.Search(text, limit)
			if len(hits) == 0 {
				return fmt.Errorf("no technique matches %q", text)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tTACTICS\tATT&CK")
			for _, t := range hits {
				name := t.Name
				if !t.Live() {
					name += " (revoked)"
					if t.Deprecated {
						name = t.Name + " (deprecated)"
					}
				}
				tactics := t.Tactics
				if len(tactics) == 0 {
					tactics = t.TacticsV19
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.ID, name, strings.Join(tactics, ","), t.AttackVersion)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().IntVarP(&limit, "limit", "n", 25, "most results to show (0: all)")
	return cmd
}

func (a *app) attackUpdateCommand() *cobra.Command {
	var stix string
	cmd := &cobra.Command{
		Use:   "update --stix FILE",
		Short: "Load a newer ATT&CK Enterprise STIX 2.1 bundle into the data directory",
		Long: `Parse an ATT&CK Enterprise STIX 2.1 bundle (enterprise-attack.json) and use it from
then on instead of the embedded copy. A file that does not parse, or is not
ATT&CK, is refused with the reason and the previous data stays in use.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if stix == "" {
				return usageError{errors.New("update: --stix FILE is required")}
			}
			kb, err := attack.Update(a.dataDir, stix)
			if err != nil {
				return err
			}
			c := kb.Counts()
			fmt.Fprintf(cmd.OutOrStdout(), "ATT&CK %s loaded into %s: %d techniques (%d sub-techniques), %d tactics, %d mitigations, %d groups, %d software\n",
				c.Version, attack.DataPath(a.dataDir), c.Techniques, c.Subtechniques, c.Tactics, c.Mitigations, c.Groups, c.Software)
			return nil
		},
	}
	cmd.Flags().StringVar(&stix, "stix", "", "path of the STIX 2.1 bundle")
	return cmd
}

func (a *app) attackInfoCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "info",
		Short: "Which ATT&CK version is in use, and its counts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			kb, err := a.knowledgeBase()
			if err != nil {
				return err
			}
			c := kb.Counts()
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "ATT&CK Enterprise %s", c.Version)
			if ov := kb.OverlayVersion(); ov != "" {
				fmt.Fprintf(w, " with the v%s overlay", ov)
			}
			fmt.Fprintln(w)
			fmt.Fprintf(w, "techniques %d (%d parents, %d sub-techniques), tactics %d, mitigations %d, groups %d, software %d\n",
				c.Techniques, c.ParentTechniques, c.Subtechniques, c.Tactics, c.Mitigations, c.Groups, c.Software)
			fmt.Fprintf(w, "v19: %d techniques added, %d tactics; %d ID redirects\n", c.TechniquesV19Added, c.TacticsV19, c.Redirects)
			return nil
		},
	}
}
