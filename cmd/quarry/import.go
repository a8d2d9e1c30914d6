package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/quarry-sec/quarry/detections/incidents"
	"github.com/quarry-sec/quarry/detections/pipeline"
	"github.com/quarry-sec/quarry/internal/interrupt"
	"github.com/quarry-sec/quarry/tables/activity"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
	"github.com/quarry-sec/quarry/telemetry/host"
	"github.com/quarry-sec/quarry/telemetry/importers"
)

// importBatch is how many events go into one store transaction.
const importBatch = 5000

func (a *app) importCommand() *cobra.Command {
	var hostName, format string
	var quiet, noDetect bool
	var rf ruleFlags
	formatsHelp := []string{"auto: " + importers.FormatAuto.Description()}
	for _, f := range importers.Formats() {
		formatsHelp = append(formatsHelp, string(f)+": "+f.Description())
	}
	cmd := &cobra.Command{
		Use:   "import [--host NAME] [--format auto|FORMAT] [--no-detect] [rule flags] FILE|DIR...",
		Short: "Import recorded telemetry (Sysmon EVTX/JSON, Security 4688, auditd, CAPE/Cuckoo reports) into the event store",
		Long: `Import recordings into the event store, where process_events serves them.
The format is detected from each file's content unless --format forces one.
A directory imports every file under it in a known format (the others are
listed as skipped); gzip files and zip archives are read through. A malformed
record is counted and reported with its line or record number; the rest of the
file is still imported. Values are bounded (command lines and script text at
32 KiB, other values at 4 KiB; process_events.truncated marks a cut event).
--host NAME sets every event's host; without it, events keep their record's
host, and those whose record names none get this machine's name. The summary
says which hosts were used.

Detection runs on what is imported, as on live events: medium and higher hits
become ioa_hits rows, informational and low ones tag their events, and the
hits are grouped into incidents (quarry incidents). --no-detect only stores.

A CAPE or Cuckoo sandbox report (report.json) becomes a sandbox run: its
processes, their API behaviour, network and dropped files are events with
source 'sandbox' and the run id (cape-<task id>, cuckoo-<task id>), its
signatures hits of the sandbox's own rules, and the run (verdict, score,
techniques and tactics, a JSON summary) a row of sandbox_runs. Events are
stored under the report's machine name unless --host names one.

Formats:
  ` + strings.Join(formatsHelp, "\n  "),
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{errors.New("import: give one or more files")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := importers.ParseFormat(format)
			if err != nil {
				return usageError{err}
			}
			st, err := a.eventStore()
			if err != nil {
				return err
			}
			var det *importDetection
			if !noDetect {
				rules, _, err := a.loadRules(rf, cmd.ErrOrStderr())
				if err != nil {
					return err
				}
				kb, err := a.knowledgeBase()
				if err != nil {
					return err
				}
				d, cerrs := pipeline.NewDetector(rules, kb)
				for _, e := range cerrs {
					fmt.Fprintf(cmd.ErrOrStderr(), "quarry: %v\n", e)
				}
				if lv := a.intelLive(context.Background(), kb); lv != nil {
					d.SetIntel(lv)
				}
				d.SetHitsPerProcess(rf.hitsPerProcess)
				det = &importDetection{det: d, spans: map[string][2]time.Time{}, bySeverity: map[string]int{}, seen: map[string]bool{}}
			}
			ctx, stop := interrupt.Context(context.Background())
			defer stop()
			opts := []importers.Option{importers.WithFormat(f)}
			if hostName != "" {
				opts = append(opts, importers.WithHost(hostName))
			}
			progress := cmd.ErrOrStderr()
			if quiet || !isTerminal(progress) {
				progress = io.Discard // a progress bar is for a person at a terminal
			}
			sum := importSummary{skipped: map[string]int{}, det: det, hosts: hostFill{fallback: host.Identifier()}, override: hostName != "", tables: activity.Counts{}}
			ins, skippedFiles, failed := recordings(args, cmd.ErrOrStderr())
			sum.skippedFiles = skippedFiles
			total := len(ins) + len(failed)
			for _, in := range ins {
				if err := a.importFile(ctx, in, opts, progress, &sum); err != nil {
					// A file that cannot be read is reported; the others are
					// still imported, and the exit code says one failed. A
					// damaged recording is a warning.
					if isWarning(err) {
						fmt.Fprintf(cmd.ErrOrStderr(), "quarry: warning: %v\n", err)
						continue
					}
					fmt.Fprintf(cmd.ErrOrStderr(), "quarry: %v\n", err)
					failed = append(failed, in.Name)
					if ctx.Err() != nil {
						break
					}
				}
			}
			var incErr error
			if det != nil {
				incErr = det.refresh(ctx, st)
			}
			if _, err := st.EnforceRetention(ctx); err != nil {
				a.log.Warn().Err(err).Msg("retention")
			}
			sum.print(cmd.OutOrStdout())
			if incErr != nil {
				return incErr
			}
			if len(failed) > 0 {
				return fmt.Errorf("%d of %d file(s) not imported: %s", len(failed), total, strings.Join(failed, ", "))
			}
			if sum.read == 0 {
				return errors.New("import: no events read")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&hostName, "host", "", "host_identifier for every imported event (default: the record's own host name, else this machine's, said in the summary)")
	cmd.Flags().StringVar(&format, "format", "auto", "recording format (see above)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	cmd.Flags().BoolVar(&noDetect, "no-detect", false, "store the events without running detection")
	rf.add(cmd)
	rf.addHitsPerProcess(cmd)
	return cmd
}

// importDetection is the detection an import runs, and what it found.
type importDetection struct {
	det *pipeline.Detector
	// spans are the first and last hit time per host, where incidents are
	// regrouped once the files are in.
	spans      map[string][2]time.Time
	hits       int
	bySeverity map[string]int
	seen       map[string]bool // hit ids counted
	incidents  int
}

// store stores a batch with detection.
func (d *importDetection) store(ctx context.Context, st *eventstore.Store, batch []telemetry.Event) (eventstore.BatchResult, []telemetry.Hit, error) {
	res, recs, err := d.det.StoreBatch(ctx, st, batch)
	if err != nil {
		return res, nil, err
	}
	d.count(recs)
	return res, recs, nil
}

// count adds stored hit rows to the counts and the spans.
func (d *importDetection) count(recs []telemetry.Hit) {
	for i := range recs {
		r := &recs[i]
		if !d.seen[r.HitID] {
			d.seen[r.HitID] = true
			d.hits++
			d.bySeverity[r.Severity]++
		}
		sp, ok := d.spans[r.Host]
		if !ok {
			sp = [2]time.Time{r.Time, r.Time}
		}
		if r.Time.Before(sp[0]) {
			sp[0] = r.Time
		}
		if r.Time.After(sp[1]) {
			sp[1] = r.Time
		}
		d.spans[r.Host] = sp
	}
}

// refresh closes the correlation windows still open (the end of the
// input) and regroups the incidents where hits arrived (and where an
// earlier import cut short left them to regroup).
func (d *importDetection) refresh(ctx context.Context, st *eventstore.Store) error {
	last, err := d.det.Finish(ctx, st)
	if err != nil {
		return err
	}
	d.count(last)
	if _, err := incidents.RefreshPending(ctx, st, incidents.Options{}); err != nil {
		return err
	}
	// Count the incidents where this import's hits landed.
	n := 0
	for h, sp := range d.spans {
		spans, err := st.IncidentsOverlapping(ctx, h, sp[0], sp[1])
		if err != nil {
			return err
		}
		n += len(spans)
	}
	d.incidents = n
	return nil
}

func (d *importDetection) print(w io.Writer) {
	sev := make([]string, 0, len(d.bySeverity))
	for _, s := range []string{"critical", "high", "medium"} {
		if n := d.bySeverity[s]; n > 0 {
			sev = append(sev, fmt.Sprintf("%d %s", n, s))
		}
	}
	line := fmt.Sprintf("detection: %d hit(s)", d.hits)
	if len(sev) > 0 {
		line += " (" + strings.Join(sev, ", ") + ")"
	}
	if n := d.det.Capped(); n > 0 {
		line += fmt.Sprintf(", %d more matches over --hits-per-process only tagged", n)
	}
	fmt.Fprintf(w, "%s; %d incident(s) where they landed (quarry incidents lists them)\n", line, d.incidents)
	if n := d.det.IOCHits(); n > 0 {
		fmt.Fprintf(w, "threat intelligence: %d indicator hit(s) (in ioc_hits)\n", n)
	}
}

// importSummary counts what an import did, over all its files.
type importSummary struct {
	files, read, stored, bad int
	merged, already          int
	skippedFiles             int // files of no known format under a directory or in an archive
	took                     time.Duration
	hosts                    hostFill       // the hosts events were stored as
	override                 bool           // --host was given
	skipped                  map[string]int // reason → count
	examples                 []string       // the first few bad records, with where
	notices                  []string       // what the importers corrected (clock offsets)
	det                      *importDetection
	tables                   activity.Counts  // stored events by the named table that shows them
	runs                     []sandboxRunLine // sandbox runs stored
}

const maxExamples = 10

func (s *importSummary) print(w io.Writer) {
	rate := 0.0
	if s.took > 0 {
		rate = float64(s.read) / s.took.Seconds()
	}
	merged := ""
	if s.merged > 0 {
		merged = fmt.Sprintf(" (%d of them merged into the same process's start from another source)", s.merged)
	}
	fmt.Fprintf(w, "imported %d file(s): %d events read, %d stored%s, %d already stored, %d skipped (%.0f events/s)\n",
		s.files, s.read, s.stored, merged, s.already, s.bad, rate)
	for _, n := range s.notices {
		fmt.Fprintf(w, "  %s\n", n)
	}
	if s.skippedFiles > 0 {
		fmt.Fprintf(w, "  %d file(s) of no known format passed over (listed above)\n", s.skippedFiles)
	}
	s.hosts.print(w, s.override)
	reasons := make([]string, 0, len(s.skipped))
	for r := range s.skipped {
		reasons = append(reasons, r)
	}
	sort.Slice(reasons, func(i, j int) bool { return s.skipped[reasons[i]] > s.skipped[reasons[j]] })
	for _, r := range reasons {
		fmt.Fprintf(w, "  skipped %d: %s\n", s.skipped[r], r)
	}
	for _, e := range s.examples {
		fmt.Fprintf(w, "    %s\n", e)
	}
	s.tables.Print(w)
	if s.det != nil {
		s.det.print(w)
	}
	printRuns(w, s.runs)
}

func (a *app) importFile(ctx context.Context, in importers.Input, opts []importers.Option, progress io.Writer, sum *importSummary) error {
	path := in.Name
	r, format, err := in.Open(opts...)
	if err != nil {
		return err
	}
	defer r.Close()
	a.log.Debug().Str("file", path).Str("format", string(format)).Msg("importing")
	bar := newFileBar(progress, in, format, r)
	defer bar.finish()
	read := sum.read
	defer func() {
		if sum.read == read && ctx.Err() == nil {
			fmt.Fprintf(a.stderr, "quarry: warning: %s: no events read\n", path)
		}
	}()
	st, err := a.eventStore()
	if err != nil {
		return err
	}
	start := time.Now()
	var sandbox *sandboxImport // a sandbox report: its run is stored after its events
	if format == importers.FormatSandboxReport {
		sandbox = newSandboxImport()
	}
	batch := make([]telemetry.Event, 0, importBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		var res eventstore.BatchResult
		var recs []telemetry.Hit
		var err error
		if sum.det != nil {
			res, recs, err = sum.det.store(ctx, st, batch)
		} else {
			res, err = st.StoreBatch(ctx, batch, nil)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if sandbox != nil {
			sandbox.note(batch, res, recs)
		}
		sum.stored += res.New + res.Merged
		sum.merged += res.Merged
		sum.already += res.Already
		countTables(sum.tables, batch)
		batch = batch[:0]
		return nil
	}
	sum.files++
	for n := 0; ; n++ {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		var re *telemetry.RecordError
		if errors.As(err, &re) {
			sum.bad++
			sum.skipped[re.Reason]++
			if len(sum.examples) < maxExamples {
				sum.examples = append(sum.examples, re.Error())
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		sum.read++
		sum.hosts.fill(&ev)
		batch = append(batch, ev)
		if len(batch) == importBatch {
			if err := flush(); err != nil {
				return err
			}
			if ctx.Err() != nil {
				return fmt.Errorf("import of %s interrupted after %d events: %w", path, sum.read, ctx.Err())
			}
		}
		if n%1024 == 1023 {
			bar.update(1024)
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if sandbox != nil {
		if err := a.finishSandbox(ctx, st, path, r, sandbox, sum); err != nil {
			return err
		}
	}
	sum.notices = append(sum.notices, importers.Notices(r)...)
	sum.took += time.Since(start)
	return nil
}

func shortPath(p string) string {
	if len(p) <= 40 {
		return p
	}
	return "…" + p[len(p)-39:]
}
