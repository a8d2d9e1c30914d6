package detections

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"

	"github.com/quarry-sec/quarry/detections/internal/evjson"
)

// RegressionCase is one SigmaHQ regression test: a rule, its events and the
// expected number of hits.
type RegressionCase struct {
	Dir    string
	RuleID string
	Title  string
	Events int
	// Expected is the match_count of info.yml; 0 when absent, which means
	// "at least one".
	Expected int
	Got      int
	Pass     bool
	Skipped  bool   // the info.yml holds no runnable test
	Reason   string // why it failed or was skipped
}

// RegressionResult sums up a regression run.
type RegressionResult struct {
	Cases                   []RegressionCase
	Passed, Failed, Skipped int
}

type regressionInfo struct {
	RuleMetadata []struct {
		ID    string `yaml:"id"`
		Title string `yaml:"title"`
	} `yaml:"rule_metadata"`
	Tests []struct {
		Name       string `yaml:"name"`
		Type       string `yaml:"type"`
		MatchCount *int   `yaml:"match_count"`
		Path       string `yaml:"path"`
	} `yaml:"regression_tests_info"`
}

// RunRegression runs SigmaHQ's regression data under dir: for each
// info.yml, the events of the JSON file beside it are matched against the
// rule it names (among rules), and the hits counted against match_count.
// The error is only for a directory that cannot be walked.
func RunRegression(dir string, rules ...*Rule) (RegressionResult, error) {
	byID := map[string]*Rule{}
	for _, r := range rules {
		if r.ID != "" {
			byID[r.ID] = r
		}
	}
	var infos []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && d.Name() == "info.yml" {
			infos = append(infos, p)
		}
		return nil
	})
	if err != nil {
		return RegressionResult{}, fmt.Errorf("regression data %s: %w", dir, err)
	}
	sort.Strings(infos)
	var res RegressionResult
	for _, info := range infos {
		for _, c := range runCase(info, byID) {
			switch {
			case c.Skipped:
				res.Skipped++
			case c.Pass:
				res.Passed++
			default:
				res.Failed++
			}
			res.Cases = append(res.Cases, c)
		}
	}
	return res, nil
}

func runCase(info string, byID map[string]*Rule) []RegressionCase {
	dir := filepath.Dir(info)
	fail := func(c RegressionCase, format string, args ...any) []RegressionCase {
		c.Reason = fmt.Sprintf(format, args...)
		return []RegressionCase{c}
	}
	base := RegressionCase{Dir: dir}
	data, err := os.ReadFile(info)
	if err != nil {
		return fail(base, "read %s: %v", info, err)
	}
	var ri regressionInfo
	if err := yaml.Unmarshal(data, &ri); err != nil {
		return fail(base, "%s: %v", info, err)
	}
	if len(ri.RuleMetadata) == 0 {
		return fail(base, "%s: rule_metadata: missing", info)
	}
	base.RuleID, base.Title = ri.RuleMetadata[0].ID, ri.RuleMetadata[0].Title
	rule, ok := byID[base.RuleID]
	if !ok {
		return fail(base, "rule %s not loaded", base.RuleID)
	}
	eng := NewEngine([]*Rule{rule})
	var out []RegressionCase
	for _, t := range ri.Tests {
		c := base
		if t.MatchCount != nil {
			c.Expected = *t.MatchCount
		}
		jsonPath := filepath.Join(dir, strings.TrimSuffix(filepath.Base(t.Path), filepath.Ext(t.Path))+".json")
		evs, err := evjson.ReadFile(jsonPath)
		if err != nil {
			out = append(out, fail(c, "%v", err)...)
			continue
		}
		c.Events = len(evs)
		for i := range evs {
			c.Got += eng.Match(&evs[i], nil)
		}
		switch {
		case c.Expected == 0 && c.Got > 0, c.Expected > 0 && c.Got == c.Expected:
			c.Pass = true
		case c.Expected == 0:
			c.Reason = fmt.Sprintf("no hit in %d events", c.Events)
		default:
			c.Reason = fmt.Sprintf("%d hits in %d events, want %d", c.Got, c.Events, c.Expected)
		}
		out = append(out, c)
	}
	if len(ri.Tests) == 0 {
		base.Skipped = true
		return fail(base, "%s: regression_tests_info: no tests", info)
	}
	return out
}
