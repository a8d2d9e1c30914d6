package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/detections/pipeline"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/collect"
	"github.com/quarry-sec/quarry/telemetry/host"
)

// retentionEvery is how often a running collector trims the store.
const retentionEvery = 10 * time.Minute

func (a *app) collectCommand() *cobra.Command {
	var rf ruleFlags
	var source string
	var drain time.Duration
	var noDetect, quiet bool
	cmd := &cobra.Command{
		Use:   "collect [--source auto|ebpf|cnproc] [--no-detect] [rule flags]",
		Short: "Collect live process telemetry into the event store, with live detection",
		Long: `Collect every process start and exit on this host (eBPF, or the netlink process
connector where BPF cannot load) into the event store, and run detection rules on
them as they arrive: hits appear in ioa_hits within a second, informational and
low rules tag process_events rows with techniques. Runs until interrupted; a
one-line status shows events/s, drops and the source. Needs root.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
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
			p := pipeline.New(st, engine, pipeline.Options{KB: kb, Correlation: corr, OnError: func(err error) {
				a.log.Error().Err(err).Msg("storing events")
			}})
			c, err := collect.Start(ctx, collect.Options{Source: source, DrainInterval: drain, Host: host.Identifier()},
				func(ev telemetry.Event) { p.Add(ev) })
			if err != nil {
				p.Close()
				return err
			}
			if fb := c.Fallback(); fb != nil {
				a.log.Warn().Err(fb).Msg("eBPF unavailable; using the netlink process connector")
			}
			a.log.Info().Str("source", string(c.Source())).Str("store", st.FilePath()).Msg("collecting")
			status := cmd.ErrOrStderr()
			if f, ok := status.(*os.File); quiet || !ok || !isTerminal(f) {
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
			fmt.Fprintf(cmd.OutOrStdout(), "collected %d events (%s): %d stored, %d hits, %d tagged; drops %d, lost %d, partial %d\n",
				cs.Events, cs.Source, s.Stored, s.Hits, s.Tagged, cs.Drops, cs.Lost, cs.Partial)
			if werr != nil && !errors.Is(werr, context.Canceled) {
				return werr
			}
			return nil
		},
	}
	rf.add(cmd)
	cmd.Flags().StringVar(&source, "source", collect.SourceAuto, "telemetry source: auto (eBPF, else cnproc), ebpf or cnproc")
	cmd.Flags().DurationVar(&drain, "drain-interval", 0, "how often to read the eBPF ring buffer (default 50ms)")
	cmd.Flags().BoolVar(&noDetect, "no-detect", false, "store events without running detection")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no status line")
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
			fmt.Fprintf(w, "\r\033[K%s: %.0f events/s, %d events, %d stored, %d hits, %d drops, %d lost, %d partial",
				cs.Source, rate, cs.Events, ps.Stored, ps.Hits, cs.Drops, cs.Lost, cs.Partial)
		}
	}
}
