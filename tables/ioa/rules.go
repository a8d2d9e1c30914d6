package ioa

import (
	"context"
	"strings"
	"sync"

	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/detections/pipeline"
	"github.com/quarry-sec/quarry/tables"
)

var ruleColumns = []tables.Column{
	{Name: "id", Type: tables.Text, Description: "The rule's id", Index: true},
	{Name: "title", Type: tables.Text, Description: "The rule's title"},
	{Name: "source", Type: tables.Text, Description: "builtin (Quarry's IoA pack), custom or sigma"},
	{Name: "path", Type: tables.Text, Description: "File the rule was loaded from"},
	{Name: "status", Type: tables.Text, Description: "Sigma status: stable, test, experimental, deprecated, unsupported"},
	{Name: "severity", Type: tables.Text, Description: "informational, low, medium, high or critical"},
	{Name: "confidence", Type: tables.Text, Description: "low, medium or high (derived from status and false positives when the rule has none)"},
	{Name: "techniques", Type: tables.Text, Description: "ATT&CK technique IDs, comma-separated (as resolved in the loaded ATT&CK)"},
	{Name: "tactics", Type: tables.Text, Description: "ATT&CK tactic shortnames, comma-separated"},
	{Name: "author", Type: tables.Text, Description: "The rule's author"},
	{Name: "logsource", Type: tables.Text, Description: "product/category/service the rule reads"},
	{Name: "enabled", Type: tables.Integer, Description: "1 when the rule runs on live and retrospective detection"},
	{Name: "description", Type: tables.Text, Description: "What the rule detects"},
	{Name: "recommendations", Type: tables.Text, Description: "What to do on a hit"},
	{Name: "false_positives", Type: tables.Text, Description: "Known false positives, one per line"},
	{Name: "tags_only", Type: tables.Integer, Description: "1 for informational and low rules: they tag events with techniques without raising an alert"},
}

// RuleSource gives the rules behind ioa_rules; it is called on first use,
// so a query that never reads ioa_rules does not pay for loading rules.
type RuleSource func() ([]*detections.Rule, error)

// StaticRules is a RuleSource of rules already loaded.
func StaticRules(rs []*detections.Rule) RuleSource {
	return func() ([]*detections.Rule, error) { return rs, nil }
}

// Rules returns the ioa_rules table of the rules src gives (loaded once).
func Rules(src RuleSource) tables.Table {
	type loaded struct {
		rs   []*detections.Rule
		byID map[string][]int
	}
	load := sync.OnceValues(func() (loaded, error) {
		rs, err := src()
		if err != nil {
			return loaded{}, err
		}
		byID := make(map[string][]int, len(rs))
		for i, r := range rs {
			byID[r.ID] = append(byID[r.ID], i)
		}
		return loaded{rs, byID}, nil
	})
	return tables.Table{
		Name:        "ioa_rules",
		Description: "The detection rules Quarry runs: its builtin IoA pack, the data directory's custom rules and any SigmaHQ rules loaded, with their ATT&CK techniques and tactics.",
		Columns:     ruleColumns,
		Generate: func(ctx context.Context, q tables.QueryContext, emit tables.EmitFunc) error {
			l, err := load()
			if err != nil {
				return err
			}
			rs, byID := l.rs, l.byID
			row := make(tables.Row, len(ruleColumns))
			one := func(r *detections.Rule) bool {
				row[0] = r.ID
				row[1] = r.Title
				row[2] = string(r.Source)
				row[3] = r.Path
				row[4] = r.Status
				row[5] = r.Severity.String()
				row[6] = r.Confidence
				row[7] = strings.Join(TechniqueIDs(r), ",")
				row[8] = strings.Join(tacticNames(r), ",")
				row[9] = r.Author
				row[10] = logsource(r)
				row[11] = int64(1)
				row[12] = r.Description
				row[13] = r.Recommendations
				row[14] = strings.Join(r.FalsePositives, "\n")
				row[15] = boolInt(pipeline.TagsOnly(r))
				return emit(row)
			}
			if ids, ok := q.EqualStrings("id"); ok {
				for _, id := range ids {
					for _, i := range byID[id] {
						if !one(rs[i]) {
							return nil
						}
					}
				}
				return nil
			}
			for i, r := range rs {
				if i%256 == 0 && ctx.Err() != nil {
					return ctx.Err()
				}
				if !one(r) {
					return nil
				}
			}
			return nil
		},
	}
}

// TechniqueIDs returns a rule's technique IDs as resolved in the loaded
// ATT&CK (the tagged ID when unknown).
func TechniqueIDs(r *detections.Rule) []string {
	out := make([]string, 0, len(r.Techniques))
	for _, t := range r.Techniques {
		out = append(out, t.CurrentID())
	}
	return out
}

func tacticNames(r *detections.Rule) []string {
	out := make([]string, 0, len(r.Tactics))
	for _, t := range r.Tactics {
		out = append(out, t.ShortName)
	}
	return out
}

// logsource is product/category/service, or for a correlation rule
// correlation/<type> (it reads the hits of other rules, not events).
func logsource(r *detections.Rule) string {
	if r.Correlation != nil {
		return "correlation/" + r.Correlation.Type
	}
	ls := r.Logsource
	parts := []string{ls.Product, ls.Category, ls.Service}
	return strings.Join(parts, "/")
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
