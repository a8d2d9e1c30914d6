package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/detections/incidents"
	"github.com/quarry-sec/quarry/detections/pipeline"
	"github.com/quarry-sec/quarry/detections/ruleset"
	"github.com/quarry-sec/quarry/internal/interrupt"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
	"github.com/quarry-sec/quarry/telemetry/host"
	"github.com/quarry-sec/quarry/telemetry/importers"
)

// ruleFlags are the rule-selection flags scan and rules share.
type ruleFlags struct {
	custom    []string
	sigma     []string
	noBuiltin bool
	minLevel  string
	// skipBad runs the rules that loaded when some did not; without it a
	// rule that fails to load is an error (non-zero exit).
	skipBad bool
	// hitsPerProcess caps the hits of one rule on one process (import,
	// collect; see pipeline.DefaultHitsPerProcess).
	hitsPerProcess int
}

// addHitsPerProcess adds --hits-per-process (commands that store hits).
func (f *ruleFlags) addHitsPerProcess(cmd *cobra.Command) {
	f.hitsPerProcess = pipeline.DefaultHitsPerProcess
	cmd.Flags().Var((*hitsPerProcessValue)(&f.hitsPerProcess), "hits-per-process",
		"hits one rule raises on one process; its further matches there only tag their events (negative: no limit)")
}

// hitsPerProcessValue is --hits-per-process: an int other than 0, which
// the pipeline would take for its default rather than for no hit at all.
type hitsPerProcessValue int

func (v *hitsPerProcessValue) String() string { return strconv.Itoa(int(*v)) }
func (v *hitsPerProcessValue) Type() string   { return "int" }
func (v *hitsPerProcessValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("want a whole number")
	}
	if n == 0 {
		return fmt.Errorf("want at least 1 (or negative: no limit)")
	}
	*v = hitsPerProcessValue(n)
	return nil
}

func (f *ruleFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&f.custom, "rules", nil, "a rule file or folder of your own (repeatable)")
	cmd.Flags().StringArrayVar(&f.sigma, "sigma", nil, "a SigmaHQ rule file or folder, e.g. sigma/rules (repeatable)")
	cmd.Flags().BoolVar(&f.noBuiltin, "no-builtin", false, "leave out Quarry's builtin IoA pack")
	cmd.Flags().StringVar(&f.minLevel, "min-level", "", "only rules of this level or above: informational, low, medium, high, critical")
	cmd.Flags().BoolVar(&f.skipBad, "skip-bad-rules", false, "run the rules that load when some do not (default: a rule that fails to load is an error)")
}

// loadRules loads the selected rules and reports rules that failed to load
// on w. A rule that failed to load is an error unless f.skipBad, with which
// the others run.
func (a *app) loadRules(f ruleFlags, w io.Writer) ([]*detections.Rule, *detections.LoadResult, error) {
	var min detections.Severity
	if f.minLevel != "" {
		min = detections.ParseSeverity(strings.ToLower(f.minLevel))
		if min == detections.SeverityUnknown {
			return nil, nil, usageError{fmt.Errorf("--min-level %q: want informational, low, medium, high or critical", f.minLevel)}
		}
	}
	kb, err := a.knowledgeBase()
	if err != nil {
		return nil, nil, err
	}
	res, err := ruleset.Load(ruleset.Config{Builtin: !f.noBuiltin, DataDir: a.dataDir, Custom: f.custom, Sigma: f.sigma, KB: kb, CacheDir: ruleset.CacheDir(a.dataDir)})
	if err != nil {
		return nil, nil, err
	}
	if n := len(res.Errors); n > 0 {
		fmt.Fprintf(w, "quarry: %d rule(s) did not load:\n", n)
		for i, e := range res.Errors {
			if i == 10 {
				fmt.Fprintf(w, "  … and %d more (quarry rules lint shows all)\n", n-10)
				break
			}
			fmt.Fprintf(w, "  %v\n", e)
		}
		if !f.skipBad {
			return nil, res, fmt.Errorf("%d rule(s) did not load (fix them, or --skip-bad-rules runs the others)", n)
		}
	}
	rs := ruleset.Filter(res.Rules, min)
	if len(rs) == 0 {
		return nil, res, errors.New("no rules to run")
	}
	return rs, res, nil
}

func (a *app) scanCommand() *cobra.Command {
	var rf ruleFlags
	var format, layerPath, layerVersion, attackVersion, hostName, since, until string
	var fromStore, quiet bool
	cmd := &cobra.Command{
		Use:   "scan [--rules PATH]... [--sigma PATH]... [--no-builtin] [--min-level L] [--format table|json] [--layer FILE [--layer-attack 18.1|19]] (INPUT... | --store)",
		Short: "Run detection rules over recordings, or over the event store's history",
		Long: `Run Quarry's IoA pack, your rules and SigmaHQ rules over recorded telemetry (every
format 'quarry import' reads) without storing it, or with --store over the events
already in the store, so new rules run over history (their hits are stored and
appear in ioa_hits).

JSON output is one hit per line and technique, with the ioa_hits fields plus
source_file and record. The summary (events, events/s, hits by severity and by
technique) goes to standard error with --format json.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := oneOf("format", format, formatTable, formatJSON); err != nil {
				return err
			}
			v19, err := attack.ParseVersion(attackVersion)
			if err != nil {
				return usageError{fmt.Errorf("--attack: %w", err)}
			}
			if !cmd.Flags().Changed("layer-attack") {
				layerVersion = attackVersion // the layer follows --attack
			}
			newLayer, err := layerMaker(layerVersion)
			if err != nil {
				return err
			}
			if fromStore == (len(args) > 0) {
				return usageError{errors.New("scan: give input files, or --store (not both)")}
			}
			if !fromStore && (since != "" || until != "") {
				return usageError{errors.New("scan: --since and --until select stored events: they need --store")}
			}
			if fromStore && hostName != "" {
				return usageError{errors.New("scan: --host names the host of input files' events: not with --store")}
			}
			restoreGC := startupGC()
			defer restoreGC()
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
			// Hits are written through a buffer (one write a hit was ≈ 5 %
			// of a scan's CPU); it is flushed before the command returns.
			out := bufio.NewWriterSize(cmd.OutOrStdout(), 64<<10)
			sc := &scanner{
				engine: detections.NewEngine(rules), kb: kb, v19: v19, format: format, out: out,
				bySeverity: map[string]int{}, byTechnique: map[string]int{}, byTactic: map[string]int{},
			}
			if layerPath != "" { // hits per technique: nil, not counted, without --layer
				sc.layer = map[string]attack.LayerScore{}
			}
			sc.afterFirst = restoreGC
			sc.min = detections.ParseSeverity(strings.ToLower(rf.minLevel))
			var cerrs []error
			sc.corr, cerrs = pipeline.Correlator(rules)
			for _, e := range cerrs {
				fmt.Fprintf(cmd.ErrOrStderr(), "quarry: %v\n", e)
			}
			var summaryTo io.Writer = out
			if format == formatJSON {
				summaryTo = cmd.ErrOrStderr()
			}
			progress := cmd.ErrOrStderr()
			if quiet || !isTerminal(progress) {
				progress = io.Discard
			}
			start := time.Now()
			if fromStore {
				err = a.scanStore(ctx, sc, since, until, progress)
			} else {
				err = sc.scanFiles(ctx, args, hostName, progress, cmd.ErrOrStderr())
				sc.flushCorrelations(false)
			}
			sc.flushTable()
			sc.printSummary(summaryTo, len(rules), time.Since(start))
			if ferr := out.Flush(); ferr != nil && err == nil {
				err = fmt.Errorf("write output: %w", ferr)
			}
			if layerPath != "" {
				l := newLayer(kb, "Quarry scan hits", fmt.Sprintf("Hits per technique of a Quarry scan (%d events, %d hits)", sc.events, sc.hits), "hits", sc.layer)
				if werr := writeLayerFile(layerPath, l); werr != nil {
					return werr
				}
			}
			return err
		},
	}
	rf.add(cmd)
	cmd.Flags().StringVarP(&format, "format", "f", formatTable, "output: table or json (one hit per line)")
	cmd.Flags().StringVar(&layerPath, "layer", "", "write an ATT&CK Navigator layer of hits per technique to FILE")
	cmd.Flags().StringVar(&attackVersion, "attack", attack.ViewV18, "ATT&CK version of the output's technique names and tactics: 18.1 or 19")
	cmd.Flags().StringVar(&layerVersion, "layer-attack", "", "ATT&CK version of the --layer file: 18.1 or 19 (default: --attack's)")
	cmd.Flags().StringVar(&hostName, "host", "", "host_identifier for the recordings' events (default: the records' own, else this machine's, said in the summary)")
	cmd.Flags().BoolVar(&fromStore, "store", false, "scan the event store instead of files, storing the hits")
	cmd.Flags().StringVar(&since, "since", "", "with --store: only events at or after this time (RFC 3339, or a duration ago like 24h)")
	cmd.Flags().StringVar(&until, "until", "", "with --store: only events before this time")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	return cmd
}

func writeLayerFile(path string, l *attack.Layer) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("layer: %w", err)
	}
	if err := l.Write(f); err != nil {
		f.Close()
		return fmt.Errorf("layer %s: %w", path, err)
	}
	return f.Close()
}

// parseTimeFlag reads an RFC 3339 time, a date, or a duration ago (a Go
// duration, 24h, or days, 30d).
func parseTimeFlag(name, v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(-d), nil
	}
	if n, ok := strings.CutSuffix(v, "d"); ok {
		if days, err := strconv.Atoi(n); err == nil && days >= 0 {
			return now.AddDate(0, 0, -days), nil
		}
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, usageError{fmt.Errorf("--%s %q: want an RFC 3339 time, a date (2006-01-02) or a duration ago (24h, 30d)", name, v)}
}

// scanner runs the engine over events and reports hits.
type scanner struct {
	engine *detections.Engine
	corr   *detections.Correlator // nil without correlation rules
	// min hides the hits of rules below it, kept only because a
	// correlation names them (--min-level).
	min detections.Severity
	kb  *attack.KB
	// v19 shows technique names and tactics in ATT&CK v19 (--attack 19),
	// else in v18.1.
	v19    bool
	format string
	out    io.Writer

	events, hits, bad int
	hosts             hostFill // hosts the events were read as
	hostOverride      bool     // --host was given
	// untagged counts the hits of rules naming no ATT&CK technique.
	untagged    int
	bySeverity  map[string]int
	byTechnique map[string]int // by technique ID in the shown version
	byTactic    map[string]int // hits per tactic of the shown version
	layer       map[string]attack.LayerScore
	table       []telemetry.Hit // table format: rows to print
	// rows are the rule rows of the rules that hit (JSON output).
	rows map[*detections.Rule]*ruleRows
	line []byte // JSON output: the lines of one hit
	id   []byte // JSON output: the current hit's id
	// afterFirst, when set, is called once the first event is matched
	// (startupGC's restore).
	afterFirst func()
	// evPart is the part of the hits of event number events (the one
	// being matched) that all of them share (reportRows).
	evPart eventPart

	// file and record being scanned, for JSON output.
	file   string
	record int64
	// onHit, when set, also receives each hit and its rows (scan --store
	// saves them).
	onHit func(detections.Hit, []telemetry.Hit)
}

const maxTableRows = 1000

// match runs the rules over one event: eid is its store id (0 for files).
// Correlation rules see every hit; a rule named only by correlations with
// generate false does not report its own.
func (s *scanner) match(ev *telemetry.Event, eid int64) {
	s.events++
	ref := eid
	if ref == 0 {
		ref = s.record
	}
	s.engine.Match(ev, func(h detections.Hit) {
		if (s.corr == nil || s.corr.Reports(h.Rule)) && h.Rule.Severity >= s.min {
			s.report(h, eid, s.record)
		}
		if s.corr != nil {
			s.corr.Observe(h, ref, s.reportCorrelation(eid != 0))
		}
	})
	if s.afterFirst != nil { // the rules are compiled for the first event's log source
		s.afterFirst()
		s.afterFirst = nil
	}
	if s.corr != nil {
		s.corr.Advance(ev.Time, s.reportCorrelation(eid != 0))
	}
}

// reportCorrelation reports correlation hits: ref is the store eid of the
// event (fromStore) or its record number.
func (s *scanner) reportCorrelation(fromStore bool) detections.Emit {
	return func(h detections.Hit, ref int64) {
		if fromStore {
			s.report(h, ref, ref)
		} else {
			s.report(h, 0, ref)
		}
	}
}

// flushCorrelations closes the correlation windows still open at the end
// of the input.
func (s *scanner) flushCorrelations(fromStore bool) {
	if s.corr != nil {
		s.corr.Flush(s.reportCorrelation(fromStore))
	}
}

// report counts, prints and hands on one hit; record is its event's record
// number (or eid) for JSON output.
func (s *scanner) report(h detections.Hit, eid, record int64) {
	if s.onHit == nil && s.format == formatJSON {
		if rr := s.rowsOf(h); rr != nil {
			s.reportRows(h, rr, eid, record)
			return
		}
	}
	s.hits++
	s.bySeverity[h.Rule.Severity.String()]++
	recs := pipeline.Records(h, eid, s.kb)
	for _, r := range recs {
		if r.TechniqueID != "" && s.layer != nil {
			ls := s.layer[r.TechniqueID]
			ls.Score++
			ls.Names = append(ls.Names, r.RuleTitle)
			s.layer[r.TechniqueID] = ls
		}
	}
	if s.onHit != nil {
		s.onHit(h, recs) // stored as the rules wrote them
	}
	recs = s.shown(recs)
	tactics := map[string]bool{}
	for _, r := range recs {
		if r.TechniqueID == telemetry.Untagged {
			s.untagged++
		} else {
			s.byTechnique[r.TechniqueID]++
		}
		for _, t := range strings.Split(r.Tactic, ",") {
			if t != "" && !tactics[t] {
				tactics[t] = true
				s.byTactic[t]++
			}
		}
	}
	if s.format == formatJSON {
		for i := range recs {
			s.writeJSON(&recs[i], record)
		}
	} else if len(s.table) < maxTableRows {
		// The event's strings are reused by the next record
		// (importers.NextInto): keep copies.
		r := recs[0]
		for _, p := range []*string{&r.Host, &r.Path, &r.Cmdline, &r.ParentPath, &r.Username} {
			*p = strings.Clone(*p)
		}
		s.table = append(s.table, r)
	}
}

// shown gives a hit's rows as the output shows them, in one ATT&CK
// version: technique ID, name and tactics placed there (see
// attack.KB.Place), 'untagged' for a rule naming no technique.
func (s *scanner) shown(recs []telemetry.Hit) []telemetry.Hit {
	out := make([]telemetry.Hit, len(recs))
	for i, r := range recs {
		var ts []string
		if r.Tactic != "" {
			ts = strings.Split(r.Tactic, ",")
		}
		p := s.kb.Place(r.TechniqueID, ts, s.v19)
		switch {
		case r.TechniqueID == "":
			r.TechniqueID = telemetry.Untagged
		case p.ID != "":
			r.TechniqueID, r.TechniqueName = p.ID, p.Name
		}
		r.Tactic = strings.Join(p.Tactics, ",")
		out[i] = r
	}
	return out
}

func (s *scanner) writeJSON(r *telemetry.Hit, record int64) {
	s.line = appendHitJSON(s.line[:0], r, s.file, record)
	s.out.Write(s.line)
}

// flushTable prints the hits of the table format.
func (s *scanner) flushTable() {
	if s.format != formatTable || len(s.table) == 0 {
		return
	}
	tw := tabwriter.NewWriter(s.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tHOST\tSEVERITY\tTECHNIQUE\tRULE\tAUTHOR\tPROCESS")
	for _, r := range s.table {
		proc := r.Cmdline
		if proc == "" {
			proc = r.Path
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Time.UTC().Format(time.DateTime), r.Host, r.Severity,
			r.TechniqueID, oneLine(r.RuleTitle, 60), oneLine(r.RuleAuthor, 40), oneLine(proc, 80))
	}
	tw.Flush()
	if s.hits > len(s.table) {
		fmt.Fprintf(s.out, "… %d more hits (use --format json for all)\n", s.hits-len(s.table))
	}
	fmt.Fprintln(s.out)
}

func (s *scanner) printSummary(w io.Writer, rules int, took time.Duration) {
	rate := float64(s.events) / max(took.Seconds(), 1e-9)
	fmt.Fprintf(w, "scanned %d events with %d rules in %s (%.0f events/s): %d hits", s.events, rules, took.Round(time.Millisecond), rate, s.hits)
	if s.bad > 0 {
		fmt.Fprintf(w, ", %d malformed records skipped", s.bad)
	}
	fmt.Fprintln(w)
	s.hosts.print(w, s.hostOverride)
	if s.hits == 0 {
		return
	}
	var sev []string
	for _, l := range []string{"critical", "high", "medium", "low", "informational"} {
		if n := s.bySeverity[l]; n > 0 {
			sev = append(sev, fmt.Sprintf("%s %d", l, n))
		}
	}
	fmt.Fprintf(w, "by severity: %s\n", strings.Join(sev, ", "))
	version := attack.ViewV18
	tactics := s.kb.Tactics()
	if s.v19 {
		version, tactics = attack.ViewV19, s.kb.TacticsV19()
	}
	var tacs []string
	for _, t := range tactics {
		if n := s.byTactic[t.ShortName]; n > 0 {
			tacs = append(tacs, fmt.Sprintf("%s %d", t.ShortName, n))
		}
	}
	if len(tacs) > 0 {
		fmt.Fprintf(w, "by tactic (ATT&CK %s): %s\n", version, strings.Join(tacs, ", "))
	}
	if s.untagged > 0 {
		fmt.Fprintf(w, "untagged (rules naming no ATT&CK technique): %d hits\n", s.untagged)
	}
	type tc struct {
		id string
		n  int
	}
	var ts []tc
	for id, n := range s.byTechnique {
		ts = append(ts, tc{id, n})
	}
	sort.Slice(ts, func(i, j int) bool {
		if ts[i].n != ts[j].n {
			return ts[i].n > ts[j].n
		}
		return ts[i].id < ts[j].id
	})
	if len(ts) > 0 {
		fmt.Fprintf(w, "by technique (ATT&CK %s):\n", version)
	}
	for i, t := range ts {
		if i == 20 {
			fmt.Fprintf(w, "  … %d more techniques\n", len(ts)-20)
			break
		}
		name := ""
		if tech, ok := s.kb.Technique(t.id); ok {
			name = tech.Name
			if s.v19 && tech.NameV19 != "" {
				name = tech.NameV19
			}
		}
		fmt.Fprintf(w, "  %-10s %-45s %d\n", t.id, oneLine(name, 45), t.n)
	}
}

func (s *scanner) scanFiles(ctx context.Context, paths []string, hostName string, progress, errOut io.Writer) error {
	var opts []importers.Option
	if hostName != "" {
		opts = append(opts, importers.WithHost(hostName))
	}
	s.hosts.fallback, s.hostOverride = host.Identifier(), hostName != ""
	ins, _, failed := recordings(paths, errOut)
	total := len(ins) + len(failed)
	for _, in := range ins {
		if err := s.scanFile(ctx, in, opts, progress, errOut); err != nil {
			if isWarning(err) {
				fmt.Fprintf(errOut, "quarry: warning: %v\n", err)
				continue
			}
			fmt.Fprintf(errOut, "quarry: %v\n", err)
			failed = append(failed, in.Name)
			if ctx.Err() != nil {
				break
			}
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d input(s) not scanned: %s", len(failed), total, strings.Join(failed, ", "))
	}
	if s.events == 0 && s.bad == 0 {
		return errors.New("scan: no events read")
	}
	return nil
}

func (s *scanner) scanFile(ctx context.Context, in importers.Input, opts []importers.Option, progress, errOut io.Writer) error {
	path := in.Name
	r, format, err := in.Open(opts...)
	if err != nil {
		return err
	}
	defer r.Close()
	bar := newFileBar(progress, in, format, r)
	defer bar.finish()
	s.file = path
	// Hits copy what they keep (pipeline.Records), so one event is decoded
	// into again and again without allocating a new one.
	var ev telemetry.Event
	good := 0
	for n := 0; ; n++ {
		err := importers.NextInto(r, &ev)
		if errors.Is(err, io.EOF) {
			if good == 0 {
				fmt.Fprintf(errOut, "quarry: warning: %s: no events read\n", path)
			}
			return nil
		}
		var re *telemetry.RecordError
		if errors.As(err, &re) {
			s.bad++
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		good++
		s.hosts.fill(&ev)
		s.record = ev.RecordID
		s.match(&ev, 0)
		if n%1024 == 1023 {
			bar.update(1024)
			if ctx.Err() != nil {
				return fmt.Errorf("scan of %s interrupted: %w", path, ctx.Err())
			}
		}
	}
}

// scanStore runs the rules over stored events and stores their hits.
func (a *app) scanStore(ctx context.Context, s *scanner, since, until string, progress io.Writer) error {
	st, err := a.eventStore()
	if err != nil {
		return err
	}
	now := time.Now()
	var f eventstore.Filter
	if f.Since, err = parseTimeFlag("since", since, now); err != nil {
		return err
	}
	if f.Until, err = parseTimeFlag("until", until, now); err != nil {
		return err
	}
	// As live detection does: medium and higher hits become ioa_hits rows,
	// informational and low ones tag their events with techniques.
	var pending []telemetry.Hit
	tags := map[int64][]string{}
	var saveErr error
	flush := func() { // hits and tags in one transaction
		if saveErr == nil && len(pending)+len(tags) > 0 {
			_, saveErr = st.SaveHits(ctx, pending, tags)
			pending = pending[:0]
			clear(tags)
		}
	}
	s.onHit = func(h detections.Hit, recs []telemetry.Hit) {
		if pipeline.TagsOnly(h.Rule) {
			for _, r := range recs {
				if r.TechniqueID != "" {
					tags[r.EID] = append(tags[r.EID], r.TechniqueID)
				}
			}
		} else {
			pending = append(pending, recs...)
		}
		if len(pending)+len(tags) >= 1000 {
			flush()
		}
	}
	s.file = st.FilePath()
	bar := progressbar.NewOptions(-1, progressbar.OptionSetWriter(progress),
		progressbar.OptionSetDescription("event store"), progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish())
	defer bar.Finish()
	n := 0
	err = st.Scan(ctx, f, func(e *eventstore.StoredEvent) bool {
		s.record = e.EID
		s.match(&e.Event, e.EID)
		n++
		if n%1024 == 0 {
			bar.Add(1024)
		}
		return ctx.Err() == nil && saveErr == nil
	})
	s.flushCorrelations(true)
	flush()
	if err != nil {
		return err
	}
	if saveErr != nil {
		return fmt.Errorf("store hits: %w", saveErr)
	}
	// SaveHits marked where the new hits landed: the incidents there are
	// regrouped and the marks cleared, as import does.
	if _, err := incidents.RefreshPending(ctx, st, incidents.Options{}); err != nil {
		return err
	}
	return ctx.Err()
}

// startupGCPercent is the garbage collector's target while a scan starts.
const startupGCPercent = 400

// startupGC lets the heap grow further between collections while the scan
// starts: loading the rules and the knowledge base and compiling the rules
// for the first event's log source build tens of megabytes that stay live,
// which collections at every doubling from a 4 MB heap would mark again and
// again. restore sets the target back (GOGC's, 100 by default); a target
// already higher, or collection off, is left alone.
func startupGC() (restore func()) {
	old := debug.SetGCPercent(startupGCPercent)
	if old < 0 || old >= startupGCPercent {
		debug.SetGCPercent(old)
		return func() {}
	}
	return func() { debug.SetGCPercent(old) }
}
