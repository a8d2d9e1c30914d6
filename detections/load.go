package detections

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/detections/sigma"
)

// LoadError is a rule that did not load, or a warning or notice about one:
// file, line, field and reason. It is a *sigma.Error.
type LoadError = sigma.Error

// Options control loading.
type Options struct {
	// Source is recorded in every rule loaded (default SourceSigma).
	Source Source
	// KB resolves techniques and tactics and gives default
	// recommendations; nil uses attack.Embedded().
	KB *attack.KB
	// Placeholders are the values of %placeholders% for the expand
	// modifier; a placeholder without values never matches.
	Placeholders map[string][]string
}

// LoadResult is what a load found.
type LoadResult struct {
	Rules    []*Rule
	Errors   []*LoadError // rules that did not load
	Warnings []*LoadError // rules that loaded with a problem (unknown technique, unresolved placeholder)
	Skipped  []*LoadError // documents skipped on purpose (correlation rules); not failures
	Files    int          // rule files read
}

// add appends another result.
func (r *LoadResult) add(o *LoadResult) {
	r.Rules = append(r.Rules, o.Rules...)
	r.Errors = append(r.Errors, o.Errors...)
	r.Warnings = append(r.Warnings, o.Warnings...)
	r.Skipped = append(r.Skipped, o.Skipped...)
	r.Files += o.Files
}

// LoadDir loads every .yml and .yaml file under dir, recursively, in path
// order. The error is only for a directory that cannot be walked; rule
// problems are in the result.
func LoadDir(dir string, opts Options) (*LoadResult, error) {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".yml") || strings.HasSuffix(p, ".yaml")) {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load rules from %s: %w", dir, err)
	}
	sort.Strings(paths)
	return LoadFiles(paths, opts)
}

// LoadFiles loads the given rule files. A file that cannot be read is
// recorded in Errors; the others still load.
func LoadFiles(paths []string, opts Options) (*LoadResult, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	res := &LoadResult{}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			res.Errors = append(res.Errors, &LoadError{File: p, Err: fmt.Errorf("read: %w", err)})
			continue
		}
		res.add(loadBytes(p, data, opts))
	}
	return res, nil
}

// LoadBytes loads the rules of one file's content; name is reported as its
// file.
func LoadBytes(name string, data []byte, opts Options) (*LoadResult, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return loadBytes(name, data, opts), nil
}

func (o Options) withDefaults() (Options, error) {
	if o.Source == "" {
		o.Source = SourceSigma
	}
	if o.KB == nil {
		kb, err := attack.Embedded()
		if err != nil {
			return o, fmt.Errorf("load rules: ATT&CK knowledge base: %w", err)
		}
		o.KB = kb
	}
	return o, nil
}

func loadBytes(name string, data []byte, opts Options) *LoadResult {
	res := &LoadResult{Files: 1}
	pr := sigma.Parse(name, data)
	res.Errors = append(res.Errors, pr.Errors...)
	res.Skipped = append(res.Skipped, pr.Skipped...)
	for _, sr := range pr.Rules {
		r, warns, err := buildRule(sr, opts)
		if err != nil {
			var se *sigma.Error
			if !errors.As(err, &se) {
				se = &sigma.Error{File: name, Line: sr.Line, RuleID: sr.ID, Title: sr.Title, Err: err}
			}
			res.Errors = append(res.Errors, se)
			continue
		}
		for i, w := range warns {
			line := sr.Line
			if l := r.warningLine(i); l > 0 {
				line = l
			}
			res.Warnings = append(res.Warnings, &LoadError{File: name, Line: line, RuleID: sr.ID, Title: sr.Title, Err: errors.New(w)})
		}
		res.Rules = append(res.Rules, r)
	}
	return res
}

// buildRule compiles a parsed rule and fills its ATT&CK facts, confidence
// and recommendations.
func buildRule(sr *sigma.Rule, opts Options) (*Rule, []string, error) {
	vc := &valueCompiler{placeholders: opts.Placeholders, fieldID: fieldID}
	var prog *program
	source := opts.Source
	if sr.Correlation != nil {
		source = SourceCorrelation
	} else {
		var err error
		if prog, err = compileRule(sr, vc); err != nil {
			return nil, nil, err
		}
	}
	r := &Rule{
		ID: sr.ID, Name: sr.Name, Title: sr.Title, Correlation: sr.Correlation, Author: sr.Author, Source: source, Path: sr.File, Line: sr.Line,
		Status: sr.Status, Level: sr.Level, Severity: ParseSeverity(sr.Level), Description: sr.Description,
		Confidence: sr.Confidence, Recommendations: sr.Recommendations,
		FalsePositives: sr.FalsePositives, References: sr.References, Tags: sr.Tags,
		Logsource: sr.Logsource, Sigma: sr, prog: prog, placeholders: opts.Placeholders,
	}
	resolveAttack(r, opts.KB)
	if r.Confidence == "" {
		r.Confidence, r.ConfidenceDerived = DeriveConfidence(r.Status, r.Level, r.FalsePositives), true
	}
	if r.Recommendations == "" {
		r.Recommendations, r.RecommendationsDerived = DeriveRecommendations(opts.KB, r.Techniques), true
	}
	r.Warnings = append(r.Warnings, vc.warnings...)
	return r, r.Warnings, nil
}
