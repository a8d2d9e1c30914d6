package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/detections/incidents"
	"github.com/quarry-sec/quarry/detections/intel"
)

// intelDB opens the data directory's intel database once.
func (a *app) intelDB() (*intel.DB, error) {
	if a.intel != nil {
		return a.intel, nil
	}
	db, err := intel.Open(intel.Path(a.dataDir))
	if err != nil {
		return nil, err
	}
	a.intel = db
	return db, nil
}

// intelLive returns a live matcher over the data directory's indicators for
// import, collect and the agent, nil when there are none (or the intel
// database cannot be opened: said once, and detection goes on without).
func (a *app) intelLive(ctx context.Context, kb *attack.KB) *intel.Live {
	if _, err := os.Stat(intel.Path(a.dataDir)); err != nil {
		return nil // no indicators were ever loaded
	}
	db, err := a.intelDB()
	if err != nil {
		a.log.Warn().Err(err).Msg("threat intelligence not matched")
		return nil
	}
	lv, err := intel.NewLive(ctx, db, intel.NewLinker(kb))
	if err != nil {
		a.log.Warn().Err(err).Msg("threat intelligence not matched")
		return nil
	}
	return lv
}

func (a *app) intelCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "intel",
		Short: "Threat intelligence: load indicators (STIX 2.1, MISP, plain lists), list them, hunt them in history",
		Long: `Indicators of compromise (file hashes, IP addresses and networks, domains, URLs)
are loaded per feed (--source) into the data directory's intel.db, matched
against events live and by 'quarry intel hunt' over the stored history, and
served as the ioc_hits and intel_indicators tables. Indicators carry the
ATT&CK techniques, groups and software their intel links them to.`,
	}
	cmd.AddCommand(a.intelLoadCommand(false), a.intelLoadCommand(true), a.intelRemoveCommand(),
		a.intelListCommand(), a.intelHuntCommand())
	return cmd
}

func (a *app) intelLoadCommand(replace bool) *cobra.Command {
	var source, format, ttl string
	var confidence int
	use, short := "add FILE", "Load a feed's indicators, merged into the source's"
	if replace {
		use, short = "update FILE", "Replace a source's indicators by a feed's (those no longer listed are removed)"
	}
	cmd := &cobra.Command{
		Use:   use + " [--source NAME] [--format stix|misp|plain] [--confidence N] [--ttl D]",
		Short: short,
		Long: short + `.

FILE is a STIX 2.1 bundle, a MISP JSON event export or a plain list (one
indicator per line, its type detected, # comments); --format overrides the
detection. The source defaults to the file's name. Entries Quarry cannot use
(unsupported STIX patterns, MISP attribute types, malformed values) are
reported and skipped; a malformed file loads nothing. --confidence (0-100) is
given to indicators whose feed states none; --ttl (24h, 30d) makes indicators
without an end of validity expire that long after the load.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var opts intel.Options
			opts.Source = source
			if opts.Source == "" {
				opts.Source = intel.SourceOf(args[0])
			}
			if confidence < 0 || confidence > 100 {
				return usageError{fmt.Errorf("--confidence %d: want 0-100", confidence)}
			}
			opts.Confidence = confidence
			if ttl != "" {
				d, err := parseTTL(ttl)
				if err != nil {
					return usageError{err}
				}
				opts.TTL = d
			}
			switch intel.Format(format) {
			case "", intel.FormatSTIX, intel.FormatMISP, intel.FormatPlain:
			default:
				return usageError{fmt.Errorf("--format %q: want stix, misp or plain", format)}
			}
			fh, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer fh.Close()
			feed, err := intel.Read(fh, args[0], intel.Format(format), opts)
			if err != nil {
				return err
			}
			kb, err := a.knowledgeBase()
			if err != nil {
				return err
			}
			intel.NewLinker(kb).ResolveFeed(feed)
			db, err := a.intelDB()
			if err != nil {
				return err
			}
			if err := db.Store(cmd.Context(), feed, replace); err != nil {
				return err
			}
			writeSkips(a.stderr, feed)
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s from %s (%s); %s merged; %d skipped (%d unsupported)\n",
				feed.Source, plural(len(feed.Indicators), "indicator"), args[0], feed.Format, plural(feed.Duplicates, "duplicate"),
				len(feed.Skipped), feed.Unsupported())
			return nil
		},
	}
	cmd.Flags().StringVar(&source, "source", "", "the feed's name (default: the file's name)")
	cmd.Flags().StringVar(&format, "format", "", "stix, misp or plain (default: detected)")
	cmd.Flags().IntVar(&confidence, "confidence", intel.DefaultConfidence, "confidence (0-100) of indicators whose feed gives none")
	cmd.Flags().StringVar(&ttl, "ttl", "", "expire indicators without an end of validity this long after the load (24h, 30d)")
	return cmd
}

// maxSkipsShown bounds the skipped entries listed after a load.
const maxSkipsShown = 20

func writeSkips(w io.Writer, f *intel.Feed) {
	for i, s := range f.Skipped {
		if i == maxSkipsShown {
			fmt.Fprintf(w, "%s: … %d more skipped\n", f.Origin, len(f.Skipped)-i)
			break
		}
		kind := "invalid"
		if s.Unsupported {
			kind = "unsupported"
		}
		ref := s.Ref
		if !strings.HasPrefix(ref, f.Origin+":") {
			ref = f.Origin + ": " + ref
		}
		fmt.Fprintf(w, "%s: skipped (%s): %s\n", ref, kind, s.Reason)
	}
}

// parseTTL reads --ttl (intel.ParseTTL).
func parseTTL(s string) (time.Duration, error) {
	d, err := intel.ParseTTL(s)
	if err != nil {
		return 0, fmt.Errorf("--ttl %w", err)
	}
	return d, nil
}

func (a *app) intelRemoveCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "remove SOURCE",
		Short: "Remove a source and its indicators (their hits stay)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, err := a.intelDB()
			if err != nil {
				return err
			}
			n, err := db.Remove(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %d indicators removed\n", args[0], n)
			return nil
		},
	}
}

func (a *app) intelListCommand() *cobra.Command {
	var indicators bool
	var sources []string
	var format string
	cmd := &cobra.Command{
		Use:   "list [--indicators [--source NAME]...] [--format table|json]",
		Short: "List the loaded feeds, or their indicators",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := oneOf("format", format, formatTable, formatJSON); err != nil {
				return err
			}
			db, err := a.intelDB()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if indicators {
				return listIndicators(cmd.Context(), out, db, sources, format)
			}
			feeds, err := db.Feeds(cmd.Context())
			if err != nil {
				return err
			}
			if format == "json" {
				enc := json.NewEncoder(out)
				for _, f := range feeds {
					if err := enc.Encode(map[string]any{"source": f.Source, "format": f.Format, "origin": f.Origin,
						"added": f.Added.Unix(), "updated": f.Updated.Unix(), "indicators": f.Count, "active": f.Active}); err != nil {
						return err
					}
				}
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SOURCE\tFORMAT\tINDICATORS\tACTIVE\tADDED\tUPDATED\tFILE")
			for _, f := range feeds {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\n", f.Source, f.Format, f.Count, f.Active,
					f.Added.Format(time.RFC3339), f.Updated.Format(time.RFC3339), f.Origin)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&indicators, "indicators", false, "list the indicators instead of the feeds")
	cmd.Flags().StringSliceVar(&sources, "source", nil, "only these sources' indicators")
	cmd.Flags().StringVar(&format, "format", "table", "table or json")
	return cmd
}

func listIndicators(ctx context.Context, out io.Writer, db *intel.DB, sources []string, format string) error {
	now := db.Now()
	enc := json.NewEncoder(out)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	if format == "table" {
		fmt.Fprintln(tw, "TYPE\tINDICATOR\tSOURCE\tCONFIDENCE\tVALID_UNTIL\tTECHNIQUES\tGROUPS\tMALWARE")
	}
	var werr error
	err := db.ScanIndicators(ctx, intel.IndicatorFilter{Sources: sources}, func(in *intel.Indicator) bool {
		until := ""
		if !in.ValidUntil.IsZero() {
			until = in.ValidUntil.Format(time.RFC3339)
			if in.Expired(now) {
				until += " (expired)"
			}
		}
		if format == "json" {
			werr = enc.Encode(map[string]any{"type": in.Type, "indicator": in.Value, "source": in.Source,
				"confidence": in.Confidence, "first_seen": in.FirstSeen.Unix(), "valid_until": until, "expired": in.Expired(now),
				"techniques": in.Techniques, "groups": in.Groups, "malware": in.Malware, "ref": in.Ref})
			return werr == nil
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", in.Type, in.Value, in.Source, in.Confidence, until,
			strings.Join(in.Techniques, ","), strings.Join(in.Groups, ","), strings.Join(in.Malware, ","))
		return true
	})
	if err == nil {
		err = werr
	}
	if err != nil {
		return err
	}
	if format == "table" {
		return tw.Flush()
	}
	return nil
}

func (a *app) intelHuntCommand() *cobra.Command {
	var since string
	cmd := &cobra.Command{
		Use:   "hunt [--since T]",
		Short: "Match the active indicators against the stored events and record their hits (ioc_hits)",
		Long: `Match every active indicator against the events of the event store (since
--since: an RFC 3339 time, a date, or a duration ago like 72h) and record the
hits in the ioc_hits table; hits already recorded are not recorded twice, so an
indicator added today finds last week's events.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			from, err := parseTimeFlag("since", since, time.Now())
			if err != nil {
				return err
			}
			db, err := a.intelDB()
			if err != nil {
				return err
			}
			kb, err := a.knowledgeBase()
			if err != nil {
				return err
			}
			st, err := a.eventStore()
			if err != nil {
				return err
			}
			start := time.Now()
			m, err := db.Matcher(cmd.Context())
			if err != nil {
				return err
			}
			if m.Len() == 0 {
				return errors.New("no active indicators: load some with 'quarry intel add'")
			}
			a.log.Debug().Int("indicators", m.Len()).Dur("took", time.Since(start)).Msg("matcher built")
			res, err := intel.Hunt(cmd.Context(), st, from, m, intel.NewLinker(kb), db.Now())
			if err != nil {
				return err
			}
			// The hits are IoC hit rows of the store too: incidents
			// regroup around them.
			if _, err := incidents.RefreshPending(cmd.Context(), st, incidents.Options{}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s matched against %s: %s, %d new (query ioc_hits)\n",
				plural(res.Events, "event"), plural(m.Len(), "indicator"), plural(res.Hits, "hit"), res.New)
			return nil
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "only events at or after this time (RFC 3339, a date, or a duration ago like 72h)")
	return cmd
}
