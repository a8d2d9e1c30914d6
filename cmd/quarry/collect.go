package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/detections/pipeline"
	"github.com/quarry-sec/quarry/internal/interrupt"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/collect"
	"github.com/quarry-sec/quarry/telemetry/ebpf"
	"github.com/quarry-sec/quarry/telemetry/host"
)

// retentionEvery is how often a running collector trims the store.
const retentionEvery = 10 * time.Minute

func (a *app) collectCommand() *cobra.Command {
	var rf ruleFlags
	var source string
	var drain time.Duration
	var noDetect, quiet bool
	var copts collect.Options
	cmd := &cobra.Command{
		Use:   "collect [--source auto|ebpf|cnproc] [--activity auto|ebpf|audit] [--no-detect] [rule flags]",
		Short: "Collect live process telemetry into the event store, with live detection",
		Long: `Collect every process start and exit on this host (eBPF, or the netlink process
connector where BPF cannot load) into the event store, and run detection rules on
them as they arrive: hits appear in ioa_hits within a second, informational and
low rules tag process_events rows with techniques. With eBPF, network connections,
DNS queries, file changes, ptrace, module loads, memfd_create and uid/capability
changes are collected too (file events rate-limited per process and filtered by
path). Where eBPF cannot capture network, file, ptrace and module-load activity,
Quarry becomes the kernel's audit daemon and adds audit rules for them (removed on
stop; not when auditd runs, which is then named in the log). Runs until interrupted; a one-line status shows events/s, drops,
rate-limited and filtered counts, the source and what is NOT captured. Needs root.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := oneOf("source", source, collect.SourceAuto, collect.SourceEBPF, collect.SourceCnProc); err != nil {
				return err
			}
			if err := oneOf("activity", copts.Activity, collect.ActivityAuto, collect.ActivityEBPF, collect.ActivityAudit); err != nil {
				return err
			}
			ctx, stop := interrupt.Context(context.Background())
			defer stop()
			st, err := a.eventStore()
			if err != nil {
				return err
			}
			var engine *detections.Engine
			var corr *detections.Correlator
			if !noDetect {
				rules, _, err := a.loadRules(rf, cmd.ErrOrStderr())
				if err != nil {
					return err
				}
				engine = detections.NewEngine(rules)
				var cerrs []error
				corr, cerrs = pipeline.Correlator(rules)
				for _, e := range cerrs {
					a.log.Warn().Err(e).Msg("correlation rule left out")
				}
				a.log.Info().Int("rules", len(rules)).Msg("live detection on")
			}
			kb, err := a.knowledgeBase()
			if err != nil {
				return err
			}
			p := pipeline.New(st, engine, pipeline.Options{KB: kb, Correlation: corr, Intel: a.intelLive(ctx, kb), HitsPerProcess: rf.hitsPerProcess, OnError: func(err error) {
				a.log.Error().Err(err).Msg("storing events")
			}})
			copts.Source, copts.DrainInterval, copts.Host = source, drain, host.Identifier()
			c, err := collect.Start(ctx, copts,
				func(ev telemetry.Event) { p.Add(ev) })
			if err != nil {
				p.Close()
				return err
			}
			if fb := c.Fallback(); fb != nil {
				a.log.Warn().Err(fb).Msg("eBPF unavailable; using the netlink process connector")
			}
			if ae := c.AuditError(); ae != nil {
				a.log.Warn().Err(ae).Msg("audit fallback not started: activity eBPF cannot capture is NOT captured")
			}
			if ac := c.Stats().AuditCaptures; len(ac) > 0 {
				a.log.Info().Strs("captures", ac).Msg("activity from the kernel audit socket (Quarry is the audit daemon until it stops)")
			}
			for _, nc := range c.Stats().NotCaptured {
				a.log.Warn().Str("not_captured", nc).Msg("activity not captured")
			}
			a.log.Info().Str("source", c.Stats().SourceName()).Str("store", st.FilePath()).Msg("collecting")
			status := cmd.ErrOrStderr()
			if quiet || !isTerminal(status) {
				status = io.Discard
			}
			go a.statusLine(ctx, status, c, p)
			go func() {
				t := time.NewTicker(retentionEvery)
				defer t.Stop()
				for {
					select {
					case <-ctx.Done():
						return
					case <-t.C:
						if _, err := st.EnforceRetention(ctx); err != nil && ctx.Err() == nil {
							a.log.Warn().Err(err).Msg("retention")
						}
					}
				}
			}()
			werr := c.Wait()
			if err := p.Close(); err != nil {
				return fmt.Errorf("flush events: %w", err)
			}
			s, cs := p.Stats(), c.Stats()
			capped := ""
			if s.Capped > 0 {
				capped = fmt.Sprintf(" (%d more matches over --hits-per-process only tagged)", s.Capped)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "collected %d events (%s): %d stored, %d hits%s, %d tagged; drops %d, lost %d, partial %d, rate-limited %d, filtered %d%s\n",
				cs.Events, cs.SourceName(), s.Stored, s.Hits, capped, s.Tagged, cs.Drops, cs.Lost, cs.Partial, cs.RateLimited, cs.Filtered, notCaptured(cs))
			if werr != nil && !errors.Is(werr, context.Canceled) {
				return werr
			}
			return nil
		},
	}
	rf.add(cmd)
	rf.addHitsPerProcess(cmd)
	cmd.Flags().StringVar(&source, "source", collect.SourceAuto, "telemetry source: auto (eBPF, else cnproc), ebpf or cnproc")
	cmd.Flags().StringVar(&copts.Activity, "activity", collect.ActivityAuto, "activity source: auto (eBPF, else the kernel audit socket), ebpf or audit")
	cmd.Flags().DurationVar(&drain, "drain-interval", 0, "how often to read the eBPF ring buffer (default 50ms)")
	cmd.Flags().BoolVar(&noDetect, "no-detect", false, "store events without running detection")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no status line")
	cmd.Flags().StringSliceVar(&copts.Disable, "no-capture", nil, "eBPF activity captures to leave out: network, dns, file, process_access, driver_load, memfd, privilege")
	cmd.Flags().Float64Var(&copts.FileRate, "file-rate", 0, "file events per second each process may emit (default 100, burst 1000; negative: no limit)")
	cmd.Flags().StringSliceVar(&copts.IncludePaths, "file-include", nil, "keep only file events under these path prefixes")
	cmd.Flags().StringSliceVar(&copts.ExcludePaths, "file-exclude", ebpf.DefaultExcludePaths, "drop file events under these path prefixes")
	cmd.Flags().Uint16Var(&copts.DNSPort, "dns-port", 53, "UDP port whose messages are captured as DNS")
	return cmd
}

// statusLine redraws one line a second: events/s, drops, hits, source.
func (a *app) statusLine(ctx context.Context, w io.Writer, c *collect.Collector, p *pipeline.Pipeline) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var last uint64
	lastT := time.Now()
	for {
		select {
		case <-ctx.Done():
			fmt.Fprint(w, "\r\033[K")
			return
		case now := <-t.C:
			cs, ps := c.Stats(), p.Stats()
			rate := float64(cs.Events-last) / now.Sub(lastT).Seconds()
			last, lastT = cs.Events, now
			fmt.Fprintf(w, "\r\033[K%s: %.0f events/s, %d events, %d stored, %d hits, %d drops, %d lost, %d partial, %d rate-limited, %d filtered%s",
				cs.SourceName(), rate, cs.Events, ps.Stored, ps.Hits, cs.Drops, cs.Lost, cs.Partial, cs.RateLimited, cs.Filtered, notCaptured(cs))
		}
	}
}

// notCaptured is the status line's note of the captures not running
// (their names; the reasons are logged at start), "" when all run.
func notCaptured(cs collect.Stats) string {
	if len(cs.NotCaptured) == 0 {
		return ""
	}
	names := make([]string, len(cs.NotCaptured))
	for i, nc := range cs.NotCaptured {
		names[i], _, _ = strings.Cut(nc, ":")
	}
	return "; NOT captured: " + strings.Join(names, ", ")
}
