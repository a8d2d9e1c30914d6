// Command quarry is Quarry's command line: SQL over endpoint telemetry and
// MITRE ATT&CK on the embedded engine, the ATT&CK knowledge base, and (as the
// later parts land) collection, detection and the fleet.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/detections/intel"
	"github.com/quarry-sec/quarry/extension/sqlengine"
	"github.com/quarry-sec/quarry/tables"
	"github.com/quarry-sec/quarry/tables/catalog"
	"github.com/quarry-sec/quarry/tables/process"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
	"github.com/quarry-sec/quarry/telemetry/host"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func main() {
	stop := profileFromEnv()
	code := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line and returns the process exit code: 0, 1 for
// a failure, 2 for a usage error.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stderr: stderr}
	root := a.rootCommand()
	rejectUnknownSubcommands(root)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	a.closeAll()
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command ") {
			help := "quarry"
			if cmd, _, ferr := root.Find(args); ferr == nil && cmd != nil {
				help = cmd.CommandPath()
			}
			fmt.Fprintf(stderr, "quarry: %v\nRun '%s --help' for usage.\n", err, help)
			return 2
		}
		fmt.Fprintf(stderr, "quarry: %v\n", err)
		return 1
	}
	return 0
}

// rejectUnknownSubcommands makes every command that only groups others
// (attack, rules, fleet…) refuse an unknown subcommand as a usage error,
// instead of printing its help and succeeding.
func rejectUnknownSubcommands(cmd *cobra.Command) {
	for _, sub := range cmd.Commands() {
		rejectUnknownSubcommands(sub)
	}
	if cmd.HasParent() && cmd.HasSubCommands() && cmd.Run == nil && cmd.RunE == nil {
		cmd.Args = cobra.ArbitraryArgs
		cmd.RunE = func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError{fmt.Errorf("unknown command %q for %q", args[0], c.CommandPath())}
			}
			return c.Help()
		}
	}
}

// usageError marks errors in how a command was called (exit code 2).
type usageError struct{ error }

// oneOf is nil when the flag's value is one of choices, else a usage error
// that lists them.
func oneOf[T ~string](flag string, value T, choices ...T) error {
	if slices.Contains(choices, value) {
		return nil
	}
	var want strings.Builder
	for i, c := range choices {
		switch {
		case i == 0:
		case i == len(choices)-1:
			want.WriteString(" or ")
		default:
			want.WriteString(", ")
		}
		want.WriteString(string(c))
	}
	return usageError{fmt.Errorf("--%s %q: want %s", flag, value, want.String())}
}

// app holds the global flags and what commands share, opened on first use.
type app struct {
	dataDir        string
	verbose        bool
	stderr         io.Writer
	retentionAge   time.Duration
	retentionBytes int64
	log            zerolog.Logger

	// skipBadRules lets the web UI (quarry up) start with the rules that
	// load when some do not; fleet serve always does.
	skipBadRules bool

	kb     *attack.KB
	events *eventstore.Store
	intel  *intel.DB
	engine *sqlengine.Engine
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "quarry",
		Short: "SQL over endpoint telemetry, enriched with MITRE ATT&CK",
		Long: `Quarry answers SQL over process telemetry, IoA detections and the MITRE ATT&CK
knowledge base, on its embedded engine or inside osquery.

Start with 'quarry shell', or 'quarry query "SELECT id, name FROM attack_techniques LIMIT 5"'.`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			level := zerolog.InfoLevel
			if a.verbose {
				level = zerolog.DebugLevel
			}
			// Colour only on a terminal: a log redirected to a file or a
			// pipe gets no escape codes.
			a.log = zerolog.New(zerolog.ConsoleWriter{Out: a.stderr, NoColor: !colourOn(a.stderr), TimeFormat: time.TimeOnly}).
				Level(level).With().Timestamp().Logger()
			if a.dataDir == "" {
				a.dataDir = host.DefaultDataDir()
			}
			return nil
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.PersistentFlags().StringVar(&a.dataDir, "data-dir", "",
		"directory for Quarry's data (default $QUARRY_DATA_DIR, else the user's data directory)")
	root.PersistentFlags().BoolVarP(&a.verbose, "verbose", "v", false, "log debug detail to stderr")
	root.PersistentFlags().DurationVar(&a.retentionAge, "retention-age", eventstore.DefaultMaxAge, "keep stored events this long (negative: no limit)")
	root.PersistentFlags().Int64Var(&a.retentionBytes, "retention-bytes", eventstore.DefaultMaxBytes, "trim the event store to this size (negative: no limit)")
	root.AddCommand(
		a.queryCommand(),
		a.shellCommand(),
		a.tablesCommand(),
		a.attackCommand(),
		a.importCommand(),
		a.scanCommand(),
		a.incidentsCommand(),
		a.treeCommand(),
		a.collectCommand(),
		a.rulesCommand(),
		a.packsCommand(),
		a.agentCommand(),
		a.huntCommand(),
		a.upCommand(),

		a.fleetCommand(),
		a.intelCommand(),
		a.detonateCommand(),
	)
	return root
}

// knowledgeBase loads ATT&CK: the data directory's update if there is one,
// else the embedded copy.
func (a *app) knowledgeBase() (*attack.KB, error) {
	if a.kb != nil {
		return a.kb, nil
	}
	start := time.Now()
	kb, err := attack.Load(a.dataDir)
	if errors.Is(err, fs.ErrPermission) {
		// A data directory this user cannot read: ATT&CK queries still
		// answer, from the data compiled in (said, since an update loaded
		// there is not used).
		a.log.Warn().Err(err).Msg("using the compiled-in ATT&CK data")
		kb, err = attack.Embedded()
	}
	if err != nil {
		return nil, err
	}
	a.log.Debug().Dur("took", time.Since(start)).Str("version", kb.Version()).Msg("ATT&CK loaded")
	a.kb = kb
	return kb, nil
}

// eventStore opens the data directory's event store.
func (a *app) eventStore() (*eventstore.Store, error) {
	if a.events != nil {
		return a.events, nil
	}
	st, err := eventstore.Open(eventstore.Path(a.dataDir), eventstore.WithRetention(a.retentionAge, a.retentionBytes))
	if err != nil {
		return nil, err
	}
	a.events = st
	if _, err := os.Stat(intel.Path(a.dataDir)); err == nil {
		// IoC sightings an older Quarry kept in the intel database move
		// into the event store (once; a no-op after).
		db, err := a.intelDB()
		if err == nil {
			var n int
			if n, err = db.MoveSightings(context.Background(), st); n > 0 {
				a.log.Info().Int("sightings", n).Msg("ioc hits moved from the intel database into the event store")
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return st, nil
}

// readStore opens the event store for a command that only reads it (query,
// shell, tree, incidents): as eventStore when the data directory may be
// written, else read-only, so a user who may read the store but not write
// it can still query it. The error says "permission denied" and the path.
func (a *app) readStore() (*eventstore.Store, error) {
	if a.events != nil {
		return a.events, nil
	}
	path := eventstore.Path(a.dataDir)
	werr := eventstore.CheckWritable(path)
	if werr == nil {
		return a.eventStore()
	}
	st, err := eventstore.OpenReadOnly(path)
	if err != nil {
		return nil, fmt.Errorf("event store: %w; and reading it: %w", werr, err)
	}
	a.log.Debug().Str("path", path).Msg("event store opened read-only (the data directory is not writable)")
	a.events = st
	return st, nil
}

// closeAll closes what the command opened.
func (a *app) closeAll() {
	if a.engine != nil {
		a.engine.Close()
	}
	if a.events != nil {
		a.events.Close()
	}
	if a.intel != nil {
		a.intel.Close()
	}
}

// openEngine returns the embedded engine over every Quarry table.
func (a *app) openEngine() (*sqlengine.Engine, error) {
	if a.engine != nil {
		return a.engine, nil
	}
	kb, err := a.knowledgeBase()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	st, stErr := a.readStore()
	if stErr != nil {
		// The attack_* tables still answer; the event tables report why.
		a.log.Debug().Err(stErr).Msg("no event store")
		st = nil
	}
	a.log.Debug().Dur("took", time.Since(start)).Msg("event store open")
	// Rules load when a query first reads ioa_rules.
	rules := func() ([]*detections.Rule, error) {
		start := time.Now()
		rs, _, err := a.loadRules(ruleFlags{skipBad: true}, a.stderr)
		a.log.Debug().Dur("took", time.Since(start)).Int("rules", len(rs)).Msg("rules loaded")
		return rs, err
	}
	db, err := a.intelDB()
	if err != nil {
		// Like an event store that cannot be opened, an intel database
		// that cannot (a read-only data directory) leaves the other tables
		// answering; ioc_hits and intel_indicators are then not served.
		a.log.Warn().Err(err).Msg("threat intelligence tables (ioc_hits, intel_indicators) not served")
		db = nil
	}
	start = time.Now()
	reg, err := catalog.New(catalog.Sources{
		ATTACK:    kb,
		Events:    st,
		EventsErr: stErr,
		Intel:     db,
		Rules:     rules,
		// Packs name the table as osquery does: serve that name too.
		OsqueryAlias: true,
		Process:      process.Options{LocalHost: host.Identifier(), BootTime: host.BootTime()},
	}, tables.WithLogger(a.log))
	if err != nil {
		return nil, err
	}
	e, err := sqlengine.Open(reg)
	if err != nil {
		return nil, err
	}
	a.log.Debug().Dur("took", time.Since(start)).Msg("engine open")
	a.engine = e
	return e, nil
}
