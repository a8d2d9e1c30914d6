package main

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/quarry-sec/quarry/detections/incidents"
	"github.com/quarry-sec/quarry/tables/activity"
)

func (a *app) treeCommand() *cobra.Command {
	var host, incident, color string
	cmd := &cobra.Command{
		Use:   "tree (PID [--host H] | --incident ID) [--color auto|always|never]",
		Short: "Draw a process tree with what was detected on each process",
		Long: `Draw the process tree of a pid (one tree per stored process that had it: a
reused pid is another process) or of an incident's root process: its ancestors,
the process, and every descendant, exited ones included. Each line shows the
command line, pid, user, start time (UTC), exit, and the ATT&CK techniques and
tactics detected on the process, coloured by severity on a terminal. Under each
process, what it did besides starting children: connections, files, registry,
DNS, modules, handles… the first 3 events of each kind with the techniques of
the hits on them, and how many more.`,
		Args: func(_ *cobra.Command, args []string) error {
			if (len(args) == 1) == (incident != "") || len(args) > 1 {
				return usageError{fmt.Errorf("tree: give a PID or --incident ID")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var colour bool
			switch color {
			case "always":
				colour = true
			case "never":
			case "auto":
				colour = colourOn(cmd.OutOrStdout())
			default:
				return usageError{fmt.Errorf("--color %q: want auto, always or never", color)}
			}
			st, err := a.readStore()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var trees []incidents.Tree
			if incident != "" {
				t, ok, err := incidents.TreeOfIncident(ctx, st, incident)
				if err != nil {
					return err
				}
				if !ok {
					return fmt.Errorf("no incident %s (quarry incidents lists them)", incident)
				}
				trees = append(trees, t)
			} else {
				pid, err := strconv.ParseInt(args[0], 10, 64)
				if err != nil || pid < 0 {
					return usageError{fmt.Errorf("tree: PID %q is not a process id", args[0])}
				}
				if trees, err = incidents.TreesOfPID(ctx, st, host, pid); err != nil {
					return err
				}
				if len(trees) == 0 {
					where := ""
					if host != "" {
						where = " on " + host
					}
					return fmt.Errorf("no stored start of process %d%s", pid, where)
				}
			}
			w := bufio.NewWriter(cmd.OutOrStdout())
			defer w.Flush()
			for i, t := range trees {
				if i > 0 {
					fmt.Fprintln(w)
				}
				keys := make([]string, len(t.Nodes))
				for j := range t.Nodes {
					keys[j] = t.Nodes[j].Key
				}
				act, err := activity.TreeActivity(ctx, st, keys, activity.PerKind)
				if err != nil {
					return err
				}
				drawTree(w, t, act, colour)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&host, "host", "", "with a PID: only this host_identifier")
	cmd.Flags().StringVar(&incident, "incident", "", "draw this incident's tree (its root process)")
	cmd.Flags().StringVar(&color, "color", "auto", "colour by severity: auto (on a terminal), always or never")
	return cmd
}

// ANSI colours by severity.
var severityColour = map[string]string{
	"critical":      "\x1b[1;31m",
	"high":          "\x1b[31m",
	"medium":        "\x1b[33m",
	"low":           "\x1b[36m",
	"informational": "\x1b[2m",
}

const colourReset = "\x1b[0m"

// drawTree writes a tree, one process a line, children indented under their
// parent with box-drawing branches.
func drawTree(w io.Writer, t incidents.Tree, act map[string]activity.ProcessActivity, colour bool) {
	fmt.Fprintf(w, "host %s, process %s\n", t.Host, t.Focus.Key)
	children := map[string][]int{}
	in := map[string]bool{}
	for i := range t.Nodes {
		in[t.Nodes[i].Key] = true
	}
	var tops []int
	for i := range t.Nodes {
		n := &t.Nodes[i]
		if n.ParentKey == "" || !in[n.ParentKey] {
			tops = append(tops, i)
			continue
		}
		children[n.ParentKey] = append(children[n.ParentKey], i)
	}
	var draw func(i int, prefix string, last, top bool)
	draw = func(i int, prefix string, last, top bool) {
		n := &t.Nodes[i]
		branch, next := "", prefix
		if !top {
			if last {
				branch, next = "└─ ", prefix+"   "
			} else {
				branch, next = "├─ ", prefix+"│  "
			}
		}
		fmt.Fprintf(w, "%s%s%s\n", prefix, branch, nodeLine(n, colour))
		kids := children[n.Key]
		under := next
		if len(kids) > 0 {
			under += "│"
		}
		drawActivity(w, under, act[n.Key], colour)
		for k, c := range kids {
			draw(c, next, k == len(kids)-1, false)
		}
	}
	for _, i := range tops {
		draw(i, "", true, true)
	}
	if t.Truncated {
		fmt.Fprintf(w, "… more than %d descendants: the rest left out\n", incidents.MaxTreeNodes)
	}
}

// drawActivity writes what a process did under its line: per kind, the
// first events with the techniques of their hits, and how many more.
func drawActivity(w io.Writer, prefix string, p activity.ProcessActivity, colour bool) {
	for _, kind := range p.Kinds() {
		k := p[kind]
		for i, it := range k.Items {
			label := ""
			if i == 0 {
				label = kind + ":"
			}
			line := fmt.Sprintf("%s  %-15s %s", prefix, label, clip(it.Summary, 140))
			if len(it.Techniques) > 0 {
				tag := " [" + strings.Join(it.Techniques, " ") + "]"
				if c, ok := severityColour[it.Severity]; ok && colour {
					tag = c + tag + colourReset
				}
				line += tag
			}
			if i == len(k.Items)-1 && k.Count > len(k.Items) {
				line += fmt.Sprintf("  (+%d more)", k.Count-len(k.Items))
			}
			fmt.Fprintln(w, line)
		}
	}
}

// clip shortens s to n runes.
func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func nodeLine(n *incidents.TreeNode, colour bool) string {
	var b strings.Builder
	if n.Relation == incidents.RelationSelf {
		b.WriteString("▶ ")
	}
	cmd := n.Cmdline
	if cmd == "" {
		cmd = n.Path
	}
	if cmd == "" {
		cmd = "?"
	}
	if r := []rune(cmd); len(r) > 160 {
		cmd = string(r[:159]) + "…"
	}
	b.WriteString(cmd)
	b.WriteString("  [pid ")
	b.WriteString(strconv.FormatInt(n.PID, 10))
	if n.User != "" {
		b.WriteString(", " + n.User)
	}
	if !n.Start.IsZero() {
		b.WriteString(", " + n.Start.UTC().Format("2006-01-02 15:04:05"))
	}
	if !n.Exit.IsZero() {
		b.WriteString(", exited " + n.Exit.UTC().Format("15:04:05"))
	}
	if n.Phantom {
		b.WriteString(", not recorded")
	}
	b.WriteString("]")
	if len(n.Hits) > 0 {
		tag := "  " + n.Severity
		if len(n.Techniques) > 0 {
			tag += fmt.Sprintf(" %s (%s)", strings.Join(n.Techniques, " "), strings.Join(n.Tactics, ", "))
		}
		for _, ioc := range n.IOCs {
			tag += " [" + ioc + "]" // IoC hits: their own badge
		}
		tag += fmt.Sprintf(" %d hit(s)", len(n.Hits))
		if c, ok := severityColour[n.Severity]; ok && colour {
			tag = c + tag + colourReset
		}
		b.WriteString(tag)
	}
	return b.String()
}
