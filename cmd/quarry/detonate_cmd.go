package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/quarry-sec/quarry/internal/interrupt"
	"github.com/quarry-sec/quarry/sandbox"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
	"github.com/quarry-sec/quarry/telemetry/host"
)

const formatHTML = "html"

func (a *app) detonateCommand() *cobra.Command {
	var rf ruleFlags
	var opts sandbox.Options
	var format, out, show string
	var list bool
	cmd := &cobra.Command{
		Use:   "detonate FILE [--timeout 60s] [--arg A]... [--network none|sink] [--format table|json|html] [-o REPORT] | --list | --show RUN",
		Short: "Run a sample in a bubblewrap sandbox and report what it did, mapped to ATT&CK",
		Long: `Run a script or ELF in a sandbox built on bubblewrap (Linux, as root): new user, pid,
mount, IPC, UTS and network namespaces, the system read-only, a throwaway home, /tmp
and /var/tmp, CPU/memory/pids limits through a cgroup made for the run, a seccomp
filter denying kexec, module loads, mount, namespaces, BPF and keyrings, and every
process of the run killed at the timeout. It is namespaces, not a VM: the sample
shares the host's kernel (see docs/sandbox.md).

Quarry's eBPF collectors watch the run's cgroup; its events are stored with
source 'sandbox' and the run id, matched by the detection rules (builtin, --rules,
--sigma) as 'quarry import' does, and summarised: a verdict and score, techniques
and tactics, the process tree with technique badges, files dropped with sha256,
network destinations and the rules that fired. --network sink answers every DNS
name with 198.18.0.1 and records what the sample sent to common TCP ports (HTTP
request line and Host, TLS server name). The run is kept: --list, --show RUN,
and SQL (sandbox_runs; process_events WHERE source = 'sandbox').`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := oneOf("format", format, formatTable, formatJSON, formatHTML); err != nil {
				return err
			}
			if err := oneOf("network", opts.Network, sandbox.NetworkNone, sandbox.NetworkSink); err != nil {
				return err
			}
			if list || show != "" {
				if len(args) > 0 {
					return usageError{errors.New("detonate: --list and --show take no FILE")}
				}
				st, err := a.readStore()
				if err != nil {
					return err
				}
				if list {
					return listRuns(cmd.Context(), st, cmd.OutOrStdout(), format)
				}
				run, ok, err := st.SandboxRun(cmd.Context(), show)
				if err != nil {
					return err
				}
				if !ok {
					return fmt.Errorf("detonate: no run %q (quarry detonate --list)", show)
				}
				kb, err := a.knowledgeBase()
				if err != nil {
					return err
				}
				rep, err := sandbox.StoredReport(run, kb)
				if err != nil {
					return fmt.Errorf("detonate: %w", err)
				}
				return writeReport(cmd.OutOrStdout(), out, format, rep)
			}
			if len(args) != 1 {
				return usageError{errors.New("detonate: give one FILE (or --list, --show RUN)")}
			}
			if err := sandbox.Supported(); err != nil {
				return fmt.Errorf("detonate: %w; --list and --show work here", err)
			}
			if os.Geteuid() != 0 {
				return errors.New("detonate: needs root (cgroups, eBPF, namespaces)")
			}
			st, err := a.eventStore()
			if err != nil {
				return err
			}
			rules, _, err := a.loadRules(rf, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			kb, err := a.knowledgeBase()
			if err != nil {
				return err
			}
			ctx, stop := interrupt.Context(context.Background())
			defer stop()
			start := time.Now()
			run, rep, err := sandbox.Detonate(ctx, args[0], sandbox.DetonateOptions{Options: opts, Store: st, Rules: rules, KB: kb, Host: host.Identifier()})
			if err != nil {
				return err
			}
			a.log.Info().Str("run", run.ID).Dur("sample", run.Duration).Dur("to_verdict", time.Since(start)).Msg("detonated")
			for _, nc := range rep.Sandbox.NotCaptured {
				a.log.Warn().Str("not_captured", nc).Msg("activity not captured")
			}
			return writeReport(cmd.OutOrStdout(), out, format, rep)
		},
	}
	rf.add(cmd)
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", 60*time.Second, "kill the run (every process of it) after this long")
	cmd.Flags().StringArrayVar(&opts.Args, "arg", nil, "an argument for the sample (repeatable)")
	cmd.Flags().StringVar(&opts.Network, "network", sandbox.NetworkNone, "none (loopback only) or sink (DNS and TCP answered and recorded locally)")
	cmd.Flags().StringVar(&format, "format", formatTable, "table, json or html")
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the report to this file instead of standard output")
	cmd.Flags().BoolVar(&list, "list", false, "list the stored runs")
	cmd.Flags().StringVar(&show, "show", "", "show the stored run with this id")
	return cmd
}

func listRuns(ctx context.Context, st *eventstore.Store, w io.Writer, format string) error {
	runs, err := st.SandboxRuns(ctx, eventstore.SandboxRunFilter{})
	if err != nil {
		return err
	}
	if format == formatJSON {
		enc := json.NewEncoder(w)
		for _, r := range runs {
			r.Report = nil
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tORIGIN\tSTARTED\tSAMPLE\tSHA256\tVERDICT\tSCORE\tTECHNIQUES")
	for _, r := range runs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.12s\t%s\t%.1f\t%s\n", r.ID, r.Origin, r.Started.Format(time.RFC3339), r.Sample, r.SHA256,
			r.Verdict, r.Score, strings.Join(r.Techniques, ","))
	}
	return tw.Flush()
}

func writeReport(stdout io.Writer, out, format string, rep *sandbox.Report) (err error) {
	w := stdout
	if out != "" {
		f, err := os.Create(out)
		if err != nil {
			return fmt.Errorf("detonate: report: %w", err)
		}
		defer func() {
			if cerr := f.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("detonate: report: %w", cerr)
			}
		}()
		w = f
	}
	switch format {
	case formatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	case formatHTML:
		return reportHTML.Execute(w, rep)
	}
	return reportTable(w, rep)
}

func reportTable(w io.Writer, r *sandbox.Report) error {
	fmt.Fprintf(w, "run %s  %s  %d bytes  sha256 %s\n", r.RunID, r.Sample, r.Size, r.SHA256)
	if r.Origin != "" && r.Origin != sandbox.OriginDetonate {
		fmt.Fprintf(w, "verdict %s  score %.1f/10  severity %s  (imported from a %s report; ran %s)\n\n", strings.ToUpper(r.Verdict), r.Score,
			r.Severity, r.Origin, r.Duration.Round(time.Millisecond))
	} else {
		fmt.Fprintf(w, "verdict %s  score %.1f/10  severity %s  (%d events, ran %s, exit %d%s)\n\n", strings.ToUpper(r.Verdict), r.Score,
			r.Severity, r.Events, r.Duration.Round(time.Millisecond), r.Sandbox.ExitCode, map[bool]string{true: ", killed at the timeout"}[r.Sandbox.TimedOut])
	}
	if len(r.Tactics) > 0 {
		var ts []string
		for _, t := range r.Tactics {
			ts = append(ts, t.ID+" "+t.Name)
		}
		fmt.Fprintf(w, "tactics: %s\n", strings.Join(ts, " → "))
	}
	if len(r.Techniques) > 0 {
		fmt.Fprintln(w, "techniques:")
		for _, t := range r.Techniques {
			how := "tagged"
			if t.Alerted {
				how = "alert"
			}
			fmt.Fprintf(w, "  %-10s %-55s %-6s %s\n", t.ID, t.Name, how, strings.Join(t.Tactics, ", "))
		}
	}
	fmt.Fprintln(w, "\nprocess tree:")
	var walk func(n *sandbox.Node, depth int)
	walk = func(n *sandbox.Node, depth int) {
		badges := ""
		if len(n.Techniques) > 0 {
			badges = "  [" + strings.Join(n.Techniques, " ") + "]"
		}
		fmt.Fprintf(w, "%s%d %s%s\n", strings.Repeat("  ", depth+1), n.PID, clip(n.Cmdline, 100), badges)
		for _, c := range n.Children {
			walk(c, depth+1)
		}
	}
	for _, n := range r.Tree {
		walk(n, 0)
	}
	if len(r.Files) > 0 {
		fmt.Fprintln(w, "\nfiles:")
		for _, f := range r.Files {
			h := "(gone)"
			if f.SHA256 != "" {
				h = f.SHA256
			}
			fmt.Fprintf(w, "  %-40s %-20s %s\n", f.Path, strings.Join(f.Actions, ","), h)
		}
	}
	if len(r.Network) > 0 {
		fmt.Fprintln(w, "\nnetwork:")
		for _, d := range r.Network {
			fmt.Fprintf(w, "  %-8s %-40s %s\n", d.Kind, d.Dest, d.Process)
			for _, s := range d.Sink {
				var what []string
				for _, kv := range [][2]string{{"request", s.Request}, {"host", s.Host}, {"sni", s.SNI}, {"data", s.Data}} {
					if kv[1] != "" {
						what = append(what, kv[0]+"="+kv[1])
					}
				}
				if len(what) > 0 {
					fmt.Fprintf(w, "           sink %s: %s\n", s.Protocol, strings.Join(what, " "))
				}
			}
		}
	}
	if len(r.Rules) > 0 {
		fmt.Fprintln(w, "\nrules that fired:")
		for _, ru := range r.Rules {
			fmt.Fprintf(w, "  [%s] %s (%s, %s) %s\n", ru.Severity, ru.Title, ru.Source, strings.Join(ru.Techniques, ","), authorLine(ru))
			fmt.Fprintf(w, "      %s\n", clip(strings.Join(strings.Fields(ru.Description), " "), 240))
			if ru.Recommendations != "" {
				fmt.Fprintf(w, "      → %s\n", clip(strings.Join(strings.Fields(ru.Recommendations), " "), 240))
			}
		}
	}
	if len(r.Sandbox.NotLimited) > 0 || len(r.Sandbox.NotCaptured) > 0 {
		fmt.Fprintf(w, "\nNOT limited: %s; NOT captured: %s\n", strings.Join(r.Sandbox.NotLimited, "; "), strings.Join(r.Sandbox.NotCaptured, "; "))
	}
	return nil
}

func authorLine(r sandbox.RuleFired) string {
	if r.Author == "" {
		return ""
	}
	s := "by " + r.Author
	if r.Licence != "" {
		s += ", " + r.Licence
	}
	return s
}

var reportHTML = template.Must(template.New("report").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Quarry sandbox run {{.RunID}}</title>
<style>body{font-family:sans-serif;margin:2em}code,pre{font-family:monospace}.b{background:#fde;border-radius:3px;padding:0 4px;margin-left:4px;font-size:85%}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}ul.tree{list-style:none}</style></head><body>
<h1>{{.Sample}}: {{.Verdict}} ({{printf "%.1f" .Score}}/10, {{.Severity}})</h1>
<p>run <code>{{.RunID}}</code>, sha256 <code>{{.SHA256}}</code>, {{.Size}} bytes, started {{.Started}}, exit {{.Sandbox.ExitCode}}{{if .Sandbox.TimedOut}}, killed at the timeout{{end}}</p>
<h2>Tactics</h2><p>{{range .Tactics}}<span class="b">{{.ID}} {{.Name}}</span> {{end}}</p>
<h2>Techniques</h2><table><tr><th>ID</th><th>Name</th><th>Tactics</th><th>Alert</th></tr>
{{range .Techniques}}<tr><td>{{.ID}}</td><td>{{.Name}}</td><td>{{range .Tactics}}{{.}} {{end}}</td><td>{{.Alerted}}</td></tr>{{end}}</table>
<h2>Process tree</h2>{{define "node"}}<li><code>{{.PID}} {{.Cmdline}}</code>{{range .Techniques}}<span class="b">{{.}}</span>{{end}}
{{if .Children}}<ul class="tree">{{range .Children}}{{template "node" .}}{{end}}</ul>{{end}}</li>{{end}}
<ul class="tree">{{range .Tree}}{{template "node" .}}{{end}}</ul>
<h2>Files</h2><table><tr><th>Path</th><th>Actions</th><th>sha256</th></tr>{{range .Files}}<tr><td>{{.Path}}</td><td>{{range .Actions}}{{.}} {{end}}</td><td><code>{{.SHA256}}</code></td></tr>{{end}}</table>
<h2>Network</h2><table><tr><th>Kind</th><th>Destination</th><th>Process</th><th>Sink</th></tr>{{range .Network}}<tr><td>{{.Kind}}</td><td>{{.Dest}}</td><td>{{.Process}}</td><td>{{range .Sink}}{{.Protocol}} {{.Request}} {{.Host}} {{.SNI}} {{.Data}}<br>{{end}}</td></tr>{{end}}</table>
<h2>Rules that fired</h2>{{range .Rules}}<h3>[{{.Severity}}] {{.Title}}</h3><p>{{.Source}}{{if .Author}}, by {{.Author}}{{end}}{{if .Licence}} ({{.Licence}}){{end}}; {{range .Techniques}}<span class="b">{{.}}</span>{{end}}</p><p>{{.Description}}</p><pre>{{.Recommendations}}</pre>{{end}}
</body></html>
`))
