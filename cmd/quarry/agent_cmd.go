package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/detections/intel"
	"github.com/quarry-sec/quarry/detections/pipeline"
	"github.com/quarry-sec/quarry/fleet/agent"
	"github.com/quarry-sec/quarry/internal/interrupt"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/collect"
	"github.com/quarry-sec/quarry/telemetry/host"
)

// agentFlags are the flags of `quarry agent`.
type agentFlags struct {
	fleet, secretFile, caFile, hostID string
	insecure, noCollect               bool
	queueBytes                        int64
	distributed, queryTimeout         time.Duration
}

func (a *app) agentCommand() *cobra.Command {
	var f agentFlags
	cmd := &cobra.Command{
		Use:   "agent --fleet URL --enroll-secret-file FILE",
		Short: "Run as a fleet host: enroll, run the fleet's scheduled queries and live hunts on the embedded engine",
		Long: `Enroll with a fleet server (Quarry's, or any server of osquery's TLS API), pull its
schedule and packs, run the scheduled queries on the embedded engine and send their
differential results, and answer live hunts. As root, live process telemetry and IoA
detection run too (as 'quarry collect' does), so ioa_hits fills while the agent runs.

Result and status logs wait in a bounded queue under the data directory while the
server is unreachable, and are sent once it is back. The server's certificate is
verified: --tls-ca trusts a self-signed one; --insecure (and plain http://) only
reach a loopback address.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.fleet == "" || f.secretFile == "" {
				return usageError{errors.New("--fleet and --enroll-secret-file are required")}
			}
			secret, err := agent.ReadEnrollSecret(f.secretFile)
			if err != nil {
				return err
			}
			ctx, stop := interrupt.Context(context.Background())
			defer stop()
			s, err := a.runAgent(ctx, agent.Config{
				FleetURL: f.fleet, EnrollSecret: secret, HostIdentifier: f.hostID,
				TLS:        agent.TLSOptions{CAFile: f.caFile, Insecure: f.insecure},
				QueueBytes: f.queueBytes, DistributedInterval: f.distributed, QueryTimeout: f.queryTimeout,
			}, !f.noCollect)
			fmt.Fprintf(cmd.OutOrStdout(), "agent stopped: %d scheduled runs, %d result logs, %d logs sent, %d live queries "+
				"(%d answers past their deadline or refused), %d dropped by the queue bound, %d intel set changes\n",
				s.ScheduledRuns, s.ResultLogs, s.LogsSent, s.LiveQueries, s.LiveDropped, s.Dropped, s.IntelChanges)
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.fleet, "fleet", "", "fleet server URL, e.g. https://fleet.example.com:8443")
	fl.StringVar(&f.secretFile, "enroll-secret-file", "", "file holding the enroll secret")
	fl.StringVar(&f.caFile, "tls-ca", "", "PEM file of the certificate(s) to trust for the server (a self-signed server)")
	fl.BoolVar(&f.insecure, "insecure", false, "skip certificate verification (loopback servers only)")
	fl.StringVar(&f.hostID, "host-identifier", "", "host identifier to enroll as (default: the host name)")
	fl.BoolVar(&f.noCollect, "no-collect", false, "no live process telemetry or detection, even as root")
	fl.Int64Var(&f.queueBytes, "queue-bytes", agent.DefaultQueueBytes, "bound of the disk queue of unsent logs")
	fl.DurationVar(&f.distributed, "distributed-interval", 0, "how often to ask for live hunts (default: the server's distributed_interval)")
	fl.DurationVar(&f.queryTimeout, "query-timeout", 0, "stop a scheduled query or a hunt's query after this long (default 60s)")
	return cmd
}

// runAgent runs a fleet agent on the embedded engine until ctx ends, with
// live collection and detection when collectLive is set and the process may
// collect. Unfilled fields of cfg come from the app.
func (a *app) runAgent(ctx context.Context, cfg agent.Config, collectLive bool) (agent.Stats, error) {
	eng, err := a.openEngine()
	if err != nil {
		return agent.Stats{}, err
	}
	if cfg.HostIdentifier == "" {
		cfg.HostIdentifier = host.Identifier()
	}
	cfg.Engine, cfg.DataDir, cfg.Version = eng, a.dataDir, version
	cfg.OnError = a.onceAMinute("fleet agent")
	// The fleet's intel sets land in the data directory's intel database,
	// through a connection of the agent's own: the live matcher (and any
	// import) sees the change and reloads.
	idb, err := intel.Open(intel.Path(a.dataDir))
	if err != nil {
		return agent.Stats{}, err
	}
	defer idb.Close()
	cfg.Intel = idb
	if kb, err := a.knowledgeBase(); err == nil {
		cfg.IntelLinker = intel.NewLinker(kb)
	}
	ag, err := agent.New(cfg)
	if err != nil {
		return agent.Stats{}, err
	}
	stopLive := func() error { return nil }
	if collectLive {
		stopLive = a.startLive(ctx)
	}
	a.log.Info().Str("fleet", cfg.FleetURL).Str("host", cfg.HostIdentifier).Str("queue", agent.QueuePath(a.dataDir)).Msg("agent running")
	err = ag.Run(ctx)
	if lerr := stopLive(); lerr != nil && err == nil {
		err = lerr
	}
	return ag.Stats(), err
}

// startLive starts the live collector and detection pipeline into the event
// store, as `quarry collect` does; it returns the function that waits for
// the collector (after ctx ends) and flushes the pipeline. Without root, or
// when no source can load, it warns and returns a no-op: the agent then
// serves stored telemetry only.
func (a *app) startLive(ctx context.Context) func() error {
	noop := func() error { return nil }
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		a.log.Warn().Msg("not root on Linux: no live process telemetry or detection; queries see the stored events only")
		return noop
	}
	st, err := a.eventStore()
	if err != nil {
		a.log.Warn().Err(err).Msg("no live collection")
		return noop
	}
	rules, _, err := a.loadRules(ruleFlags{skipBad: true}, a.stderr)
	if err != nil {
		a.log.Warn().Err(err).Msg("no live collection")
		return noop
	}
	kb, err := a.knowledgeBase()
	if err != nil {
		a.log.Warn().Err(err).Msg("no live collection")
		return noop
	}
	corr, cerrs := pipeline.Correlator(rules)
	for _, e := range cerrs {
		a.log.Warn().Err(e).Msg("correlation rule left out")
	}
	p := pipeline.New(st, detections.NewEngine(rules), pipeline.Options{KB: kb, Correlation: corr, Intel: a.intelLive(ctx, kb), OnError: func(err error) {
		a.log.Error().Err(err).Msg("storing events")
	}})
	c, err := collect.Start(ctx, collect.Options{Source: collect.SourceAuto, Host: host.Identifier()},
		func(ev telemetry.Event) { p.Add(ev) })
	if err != nil {
		p.Close()
		a.log.Warn().Err(err).Msg("no live collection")
		return noop
	}
	if fb := c.Fallback(); fb != nil {
		a.log.Warn().Err(fb).Msg("eBPF unavailable; using the netlink process connector")
	}
	a.log.Info().Str("source", string(c.Source())).Int("rules", len(rules)).Msg("live collection and detection on")
	return func() error {
		werr := c.Wait()
		if err := p.Close(); err != nil {
			return fmt.Errorf("flush events: %w", err)
		}
		if werr != nil && !errors.Is(werr, context.Canceled) {
			return werr
		}
		return nil
	}
}

// onceAMinute logs each distinct error as a warning at most once a minute
// (an unreachable server fails every few seconds).
func (a *app) onceAMinute(what string) func(error) {
	var mu sync.Mutex
	last := map[string]time.Time{}
	return func(err error) {
		msg := err.Error()
		mu.Lock()
		defer mu.Unlock()
		if t, ok := last[msg]; ok && time.Since(t) < time.Minute {
			return
		}
		if len(last) > 1000 {
			clear(last)
		}
		last[msg] = time.Now()
		a.log.Warn().Err(err).Msg(what)
	}
}
