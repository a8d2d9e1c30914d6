// Package sandboxtables serves sandbox_runs: the runs of samples detonated
// by quarry detonate (and imported sandbox reports), from the event store.
package sandboxtables

import (
	"context"
	"strings"

	"github.com/quarry-sec/quarry/tables"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

var runColumns = []tables.Column{
	{Name: "run_id", Type: tables.Text, Description: "The run's id: join process_events.run_id (hidden column) to its events", Index: true},
	{Name: "origin", Type: tables.Text, Description: "detonate (quarry detonate), cape or cuckoo (an imported report)", Additional: true},
	{Name: "host_identifier", Type: tables.Text, Description: "Host the run was made or imported on"},
	{Name: "sample", Type: tables.Text, Description: "The sample's file name"},
	{Name: "sha256", Type: tables.Text, Description: "The sample's SHA-256", Additional: true},
	{Name: "sha1", Type: tables.Text, Description: "The sample's SHA-1"},
	{Name: "md5", Type: tables.Text, Description: "The sample's MD5"},
	{Name: "size", Type: tables.BigInt, Description: "The sample's size in bytes"},
	{Name: "started", Type: tables.BigInt, Description: "When the run started, UNIX seconds", Additional: true},
	{Name: "duration_ms", Type: tables.BigInt, Description: "How long the sample ran, milliseconds"},
	{Name: "verdict", Type: tables.Text, Description: "malicious, suspicious or clean"},
	{Name: "score", Type: tables.Double, Description: "0–10: the highest severity seen plus half a point per further technique (docs/sandbox.md)"},
	{Name: "techniques", Type: tables.Text, Description: "ATT&CK technique IDs seen, comma-separated, sorted"},
	{Name: "tactics", Type: tables.Text, Description: "ATT&CK tactic IDs seen, comma-separated, in matrix order"},
	{Name: "stored_at", Type: tables.BigInt, Description: "When this host stored the run (a detonation's end, a report's import), UNIX seconds: what the fleet's pack query selects by", Additional: true},
	{Name: "tree", Type: tables.Text, Hidden: true, Description: "The run's process tree as a JSON array, parents before children, " +
		"each process with process_tree's columns (depth, relation, process_key, parent_key, node_pid, node_ppid, path, cmdline, " +
		"start_time, hit_count, techniques, severity, activity); at most 500 processes; NULL without a tree"},
	{Name: "files", Type: tables.Text, Hidden: true, Description: "Files the run wrote, changed, deleted or dropped, as JSON: " +
		"[{path, actions, process, sha256, size}], at most 200; NULL for none"},
	{Name: "network", Type: tables.Text, Hidden: true, Description: "Places the run tried to reach, as JSON: [{kind, dest, process}], " +
		"at most 200; NULL for none"},
	{Name: "rules", Type: tables.Text, Hidden: true, Description: "Rules that fired (an import's signatures too), as JSON: " +
		"[{id, title, source, author, licence, severity, confidence, description, recommendations, techniques, hits}], at most 100; " +
		"NULL for none"},
}

// Runs returns the sandbox_runs table over the runs stored in st.
func Runs(st *eventstore.Store) tables.Table {
	return tables.Table{
		Name: "sandbox_runs",
		Description: "Sandbox runs: each sample detonated by quarry detonate (or imported sandbox report) with its " +
			"hashes, verdict, score, techniques and tactics. Its events are in the ordinary tables with source = " +
			"'sandbox': join run_id to process_events.run_id (a hidden column).",
		Columns: runColumns,
		Generate: func(ctx context.Context, q tables.QueryContext, emit tables.EmitFunc) error {
			var f eventstore.SandboxRunFilter
			var none bool
			if f.Since, f.Until, none = q.TimeRange("started"); none {
				return nil
			}
			if f.StoredSince, f.StoredUntil, none = q.TimeRange("stored_at"); none {
				return nil
			}
			if vals, ok := q.EqualStrings("origin"); ok {
				if len(vals) == 0 {
					return nil
				}
				f.Origins = vals
			}
			if vals, ok := q.EqualStrings("sha256"); ok {
				if len(vals) == 0 {
					return nil
				}
				f.SHA256 = vals
			}
			if ids, ok := q.EqualStrings("run_id"); ok {
				if len(ids) == 0 {
					return nil
				}
				f.IDs = ids
			}
			withParts := q.Uses("tree") || q.Uses("files") || q.Uses("network") || q.Uses("rules")
			f.WithReport = withParts
			runs, err := st.SandboxRuns(ctx, f)
			if err != nil {
				return err
			}
			row := make(tables.Row, len(runColumns))
			for _, r := range runs {
				row[0], row[1], row[2], row[3] = r.ID, r.Origin, r.Host, r.Sample
				row[4], row[5], row[6], row[7] = r.SHA256, r.SHA1, r.MD5, r.Size
				row[8] = r.Started.Unix()
				if r.Started.IsZero() {
					row[8] = int64(0)
				}
				row[9] = r.Duration.Milliseconds()
				row[10], row[11] = r.Verdict, r.Score
				row[12], row[13] = strings.Join(r.Techniques, ","), strings.Join(r.Tactics, ",")
				row[14] = r.StoredAt.Unix()
				if r.StoredAt.IsZero() {
					row[14] = int64(0)
				}
				row[15], row[16], row[17], row[18] = nil, nil, nil, nil
				if withParts {
					p, err := parts(ctx, st, r, q.Uses("tree"))
					if err != nil {
						return err
					}
					row[15], row[16], row[17], row[18] = jsonColumn(p.Tree), jsonColumn(p.Files), jsonColumn(p.Network), jsonColumn(p.Rules)
				}
				if !emit(row) {
					return nil
				}
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			return nil
		},
	}
}
