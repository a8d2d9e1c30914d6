// Command quarry-extension serves Quarry's tables inside osquery: an osquery
// extension (osquery-go) that registers as "quarry" and serves every table
// of Quarry's catalog (ATT&CK, process events, IoA hits and rules), joinable
// with osquery's own tables. Where the host allows, it also runs the live
// process collector and the IoA detection engine, so the process and hit
// tables fill while osqueryd runs.
//
//	osqueryi --extension quarry-extension.ext
//	osqueryd --extensions_autoload=/etc/osquery/extensions.load --extensions_require=quarry
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"time"

	"github.com/rs/zerolog"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/detections/intel"
	"github.com/quarry-sec/quarry/detections/pipeline"
	"github.com/quarry-sec/quarry/detections/ruleset"
	"github.com/quarry-sec/quarry/extension/osqueryext"
	"github.com/quarry-sec/quarry/internal/interrupt"
	"github.com/quarry-sec/quarry/tables"
	"github.com/quarry-sec/quarry/tables/catalog"
	"github.com/quarry-sec/quarry/tables/ioa"
	"github.com/quarry-sec/quarry/tables/process"
	"github.com/quarry-sec/quarry/telemetry/collect"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
	"github.com/quarry-sec/quarry/telemetry/host"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// renames are the Quarry tables served under another name in osquery, whose
// own table of that name would make osqueryd refuse the whole extension.
var renames = catalog.OsqueryNames()

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run runs the extension and returns the exit code: 0 when osquery (or a
// signal) stopped it, 1 on failure, 2 for a usage error.
func run(args []string, stdout, stderr io.Writer) int {
	opts, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "quarry-extension: %v\n", err)
		return 2
	}
	if opts.version {
		fmt.Fprintf(stdout, "quarry-extension %s\n", version)
		return 0
	}
	level := zerolog.InfoLevel
	if opts.verbose {
		level = zerolog.DebugLevel
	}
	log := zerolog.New(zerolog.ConsoleWriter{Out: stderr, NoColor: true, TimeFormat: time.TimeOnly}).
		Level(level).With().Timestamp().Str("ext", "quarry").Logger()
	ctx, stop := interrupt.Context(context.Background())
	defer stop()
	if err := serve(ctx, opts, log); err != nil {
		log.Error().Err(err).Msg("quarry-extension stopped")
		return 1
	}
	return 0
}

// serve wires the extension: ATT&CK, the event store, the rules, the
// catalog, the osquery server, and the background services started once
// osqueryd has accepted the extension.
func serve(ctx context.Context, opts options, log zerolog.Logger) error {
	if opts.dataDir == "" {
		opts.dataDir = host.DefaultDataDir()
	}
	start := time.Now()
	kb, err := attack.Load(opts.dataDir)
	if err != nil {
		return err
	}
	log.Debug().Dur("since_start", time.Since(start)).Msg("ATT&CK loaded")
	st, err := eventstore.Open(eventstore.Path(opts.dataDir))
	if err != nil {
		// The ATT&CK and rule tables still serve.
		log.Warn().Err(err).Msg("no event store: process and hit tables left out")
		st = nil
	} else {
		defer func() {
			if err := st.Close(); err != nil {
				log.Warn().Err(err).Msg("closing the event store")
			}
		}()
	}
	log.Debug().Dur("since_start", time.Since(start)).Msg("event store open")
	rules, err := loadRules(opts.dataDir, kb, log)
	if err != nil {
		return err
	}
	log.Debug().Dur("since_start", time.Since(start)).Int("rules", len(rules)).Msg("rules loaded")
	src := catalog.Sources{
		ATTACK:  kb,
		Process: process.Options{LocalHost: host.Identifier(), BootTime: host.BootTime()},
		Rules:   ioa.StaticRules(rules),
	}
	if st != nil {
		src.Events = st
	}
	if db, err := intel.Open(intel.Path(opts.dataDir)); err != nil {
		log.Warn().Err(err).Msg("no intel database: ioc_hits and intel_indicators left out")
	} else {
		defer db.Close()
		src.Intel = db
	}
	reg, err := catalog.New(src, tables.WithLogger(log), tables.WithTimeout(opts.queryTimeout))
	if err != nil {
		return err
	}

	svcs := &services{log: log}
	if st != nil && opts.collect != "off" {
		var engine *detections.Engine
		var corr *detections.Correlator
		if opts.detect && len(rules) > 0 {
			engine = detections.NewEngine(rules)
			var cerrs []error
			corr, cerrs = pipeline.Correlator(rules)
			for _, e := range cerrs {
				log.Warn().Err(e).Msg("correlation rule left out")
			}
		}
		svcs.all = append(svcs.all, &collectorService{
			opts:   collect.Options{Source: opts.collect, Host: host.Identifier()},
			st:     st,
			engine: engine,
			corr:   corr,
			kb:     kb,
			log:    log,
		})
	}
	defer svcs.stop()

	var ext *osqueryext.Extension
	ext, err = osqueryext.New(reg, osqueryext.Config{
		Name:     osqueryext.DefaultName,
		Version:  version,
		Socket:   opts.socket,
		Timeout:  opts.timeout,
		Interval: opts.interval,
		Renames:  renames,
		MaxRows:  opts.maxRows,
		OnRegistered: func(uuid int64) {
			log.Info().Int64("uuid", uuid).Dur("took", time.Since(start)).
				Interface("tables", ext.TableNames()).Msg("registered with osquery")
			svcs.start(ctx)
			// Start-up garbage (ATT&CK decoding, rule compiling) is most of
			// the heap's peak; hand it back to the OS rather than idle on it.
			debug.FreeOSMemory()
		},
	})
	if err != nil {
		return err
	}
	return ext.Run(ctx)
}

// loadRules loads the builtin IoA pack and the data directory's rules.
// Broken rules are logged and left out.
func loadRules(dataDir string, kb *attack.KB, log zerolog.Logger) ([]*detections.Rule, error) {
	res, err := ruleset.Load(ruleset.Config{Builtin: true, DataDir: dataDir, KB: kb})
	if err != nil {
		return nil, err
	}
	for _, e := range res.Errors {
		log.Warn().Err(e).Msg("rule not loaded")
	}
	return res.Rules, nil
}
