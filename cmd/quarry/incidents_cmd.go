package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/quarry-sec/quarry/detections/incidents"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

// incidentJSON is a line of `quarry incidents --format json`: the incidents
// columns and the incident's hits.
type incidentJSON struct {
	IncidentID     string        `json:"incident_id"`
	HostIdentifier string        `json:"host_identifier"`
	FirstSeen      int64         `json:"first_seen"`
	LastSeen       int64         `json:"last_seen"`
	Score          float64       `json:"score"`
	Severity       string        `json:"severity"`
	Tactics        string        `json:"tactics"`
	Techniques     string        `json:"techniques"`
	HitCount       int64         `json:"hit_count"`
	RootPID        int64         `json:"root_pid"`
	RootPath       string        `json:"root_path"`
	Summary        string        `json:"summary"`
	Hits           []incidentHit `json:"hits"`
	// Related are incidents whose hits share a user, command line or
	// hashes with this one's (on any host).
	Related []relatedJSON `json:"related"`
}

// relatedJSON is one related incident.
type relatedJSON struct {
	IncidentID     string `json:"incident_id"`
	HostIdentifier string `json:"host_identifier"`
	Indicator      string `json:"indicator"`
	Value          string `json:"value"`
}

// incidentHit is one hit of an incident as `quarry incidents --format json`
// shows it: a view of incidents.Hit (the one hit type, telemetry.Hit, with
// all its techniques joined), not a hit type of its own. It keeps what
// names the hit, its rule, its event and its process; time is in UNIX
// seconds like the incident's first_seen and last_seen; the per-technique
// fields (technique_id, technique_name, tactic) give way to techniques and
// tactics, and the host is the incident's. The field names are a contract
// (TestIncidentsJSONFields).
type incidentHit struct {
	HitID      string   `json:"hit_id"`
	Time       int64    `json:"time"`
	RuleID     string   `json:"rule_id"`
	RuleTitle  string   `json:"rule_title"`
	RuleSource string   `json:"rule_source"`
	Kind       string   `json:"kind"` // ioa, or ioc for an intel indicator's hit
	Severity   string   `json:"severity"`
	Confidence string   `json:"confidence"`
	Techniques []string `json:"techniques"`
	Tactics    []string `json:"tactics"`
	EID        int64    `json:"eid"`
	PID        int64    `json:"pid"`
	Path       string   `json:"path"`
	Cmdline    string   `json:"cmdline"`
	Username   string   `json:"username"`
}

// incidentHitOf is h's view.
func incidentHitOf(h *incidents.Hit) incidentHit {
	return incidentHit{HitID: h.HitID, Time: h.Time.Unix(), RuleID: h.RuleID, RuleTitle: h.RuleTitle,
		RuleSource: h.RuleSource, Kind: h.Kind(), Severity: h.Severity, Confidence: h.Confidence,
		Techniques: append([]string{}, h.Techniques...), Tactics: append([]string{}, h.Tactics...),
		EID: h.EID, PID: h.PID, Path: h.Path, Cmdline: h.Cmdline, Username: h.Username}
}

func (a *app) incidentsCommand() *cobra.Command {
	var since, until, format string
	var hosts []string
	var minScore float64
	var rebuild bool
	var window time.Duration
	cmd := &cobra.Command{
		Use:   "incidents [--since T] [--until T] [--host H]... [--min-score S] [--format table|json] [--rebuild [--window D]]",
		Short: "List incidents: detection hits grouped along process ancestry, scored",
		Long: `List the incidents in the event store, highest score first: hits grouped along
process ancestry on one host (a process and its ancestors started within the
window; hits at most the window apart), scored by severity, confidence and the
number of distinct ATT&CK tactics. Import, scan --store and live collection keep
them up to date; --rebuild regroups every stored hit (with --window to change
the default 30m window).

JSON output is one object per line: the incidents columns (but detected_at), the incident's
hits, and the incidents related to it on any host (a hit of each, at most 30
minutes apart, shares a user, a command line or process hashes). 'quarry tree --incident ID' draws an incident's process tree.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := oneOf("format", format, formatTable, formatJSON); err != nil {
				return err
			}
			if cmd.Flags().Changed("window") && !rebuild {
				return usageError{errors.New("incidents: --window is the grouping window of --rebuild: give --rebuild too")}
			}
			now := time.Now()
			var f eventstore.IncidentFilter
			var err error
			if f.Since, err = parseTimeFlag("since", since, now); err != nil {
				return err
			}
			if f.Until, err = parseTimeFlag("until", until, now); err != nil {
				return err
			}
			f.Hosts, f.MinScore = hosts, minScore
			open := a.readStore // listing only reads: a read-only store will do
			if rebuild {
				open = a.eventStore
			}
			st, err := open()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			if rebuild {
				s, err := incidents.Rebuild(ctx, st, incidents.Options{Window: window})
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "regrouped %d hit(s) into %d incident(s)\n", s.Hits, s.Stored)
			}
			var list []eventstore.IncidentRecord
			if err := st.ScanIncidents(ctx, f, func(r *eventstore.IncidentRecord) bool {
				list = append(list, *r)
				return true
			}); err != nil {
				return err
			}
			sortIncidents(list)
			if format == formatJSON {
				return writeIncidentsJSON(ctx, cmd.OutOrStdout(), st, list)
			}
			writeIncidentsTable(cmd.OutOrStdout(), list)
			if len(list) == 0 && f.Since.IsZero() && f.Until.IsZero() && len(hosts) == 0 && minScore == 0 {
				// Hits stored by a Quarry from before incidents are
				// grouped only on request.
				if hs, err := st.HitHosts(ctx); err == nil && len(hs) > 0 {
					fmt.Fprintln(cmd.ErrOrStderr(), "the store has hits but no incidents: 'quarry incidents --rebuild' groups them")
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "incidents active at or after this time (RFC 3339, a date, or a duration ago like 24h)")
	cmd.Flags().StringVar(&until, "until", "", "incidents that began before this time")
	cmd.Flags().StringArrayVar(&hosts, "host", nil, "only this host_identifier (repeatable)")
	cmd.Flags().Float64Var(&minScore, "min-score", 0, "only incidents scoring at least this")
	cmd.Flags().StringVarP(&format, "format", "f", formatTable, "output: table or json (one incident per line, with its hits)")
	cmd.Flags().BoolVar(&rebuild, "rebuild", false, "regroup every stored hit into incidents first")
	cmd.Flags().DurationVar(&window, "window", incidents.DefaultWindow, "with --rebuild: the grouping window")
	return cmd
}

// sortIncidents orders by score (highest first), then first_seen, then id.
func sortIncidents(l []eventstore.IncidentRecord) {
	for i := 1; i < len(l); i++ {
		for j := i; j > 0 && incidentBefore(&l[j], &l[j-1]); j-- {
			l[j], l[j-1] = l[j-1], l[j]
		}
	}
}

func incidentBefore(a, b *eventstore.IncidentRecord) bool {
	if a.Score != b.Score {
		return a.Score > b.Score
	}
	if !a.FirstSeen.Equal(b.FirstSeen) {
		return a.FirstSeen.Before(b.FirstSeen)
	}
	return a.IncidentID < b.IncidentID
}

func writeIncidentsTable(w io.Writer, list []eventstore.IncidentRecord) {
	if len(list) == 0 {
		fmt.Fprintln(w, "no incidents")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCORE\tSEVERITY\tHOST\tFIRST SEEN (UTC)\tSPAN\tHITS\tROOT\tTACTICS\tINCIDENT")
	for _, r := range list {
		fmt.Fprintf(tw, "%.2f\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", r.Score, r.Severity, r.Host,
			r.FirstSeen.UTC().Format("2006-01-02 15:04:05"), r.LastSeen.Sub(r.FirstSeen).Round(time.Second),
			r.HitCount, fmt.Sprintf("%s (%d)", baseName(r.RootPath), r.RootPID), r.Tactics, r.IncidentID)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d incident(s); quarry tree --incident ID draws one\n", len(list))
}

func writeIncidentsJSON(ctx context.Context, w io.Writer, st *eventstore.Store, list []eventstore.IncidentRecord) error {
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	enc := json.NewEncoder(bw)
	for _, r := range list {
		var ids []string
		if err := st.ScanIncidentHits(ctx, []string{r.IncidentID}, nil, func(p eventstore.IncidentHitPair) bool {
			ids = append(ids, p.HitID)
			return true
		}); err != nil {
			return err
		}
		hits, err := incidents.HitsByID(ctx, st, ids)
		if err != nil {
			return err
		}
		out := incidentJSON{IncidentID: r.IncidentID, HostIdentifier: r.Host, FirstSeen: r.FirstSeen.Unix(),
			LastSeen: r.LastSeen.Unix(), Score: r.Score, Severity: r.Severity, Tactics: r.Tactics,
			Techniques: r.Techniques, HitCount: r.HitCount, RootPID: r.RootPID, RootPath: r.RootPath,
			Summary: r.Summary, Hits: make([]incidentHit, 0, len(hits))}
		for i := range hits {
			out.Hits = append(out.Hits, incidentHitOf(&hits[i]))
		}
		sort.SliceStable(out.Hits, func(i, j int) bool {
			if out.Hits[i].Time != out.Hits[j].Time {
				return out.Hits[i].Time < out.Hits[j].Time
			}
			return out.Hits[i].HitID < out.Hits[j].HitID
		})
		links, err := incidents.Related(ctx, st, r.IncidentID, incidents.Options{})
		if err != nil {
			return err
		}
		out.Related = make([]relatedJSON, 0, len(links))
		for _, l := range links {
			out.Related = append(out.Related, relatedJSON{IncidentID: l.RelatedID, HostIdentifier: l.Host, Indicator: l.Share, Value: l.Value})
		}
		if err := enc.Encode(out); err != nil {
			return err
		}
	}
	return nil
}

// baseName is the last element of a Windows or Unix path.
func baseName(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		return p[i+1:]
	}
	if p == "" {
		return "?"
	}
	return p
}
