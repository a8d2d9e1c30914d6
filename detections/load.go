package detections

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

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
	// CacheDir, when set, keeps the parsed rules of LoadFiles and LoadDir
	// there (see rulecache.go), so that loading unchanged rule files again
	// skips parsing them. Loads with Placeholders are never cached.
	CacheDir string
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
	paths, err := ruleFiles(dir)
	if err != nil {
		return nil, fmt.Errorf("load rules from %s: %w", dir, err)
	}
	return LoadFiles(paths, opts)
}

// ruleFiles returns the .yml and .yaml files under dir, in path order.
func ruleFiles(dir string) ([]string, error) {
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
		return nil, err
	}
	sort.Strings(paths)
	return paths, nil
}

// LoadFiles loads the given rule files. A file that cannot be read is
// recorded in Errors; the others still load.
func LoadFiles(paths []string, opts Options) (*LoadResult, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if opts.CacheDir != "" && opts.Placeholders == nil {
		if res, ok := loadFilesCached(paths, opts); ok {
			return res, nil
		}
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
	res, _ := loadBytesParsed(name, data, opts)
	return res
}

// parsedRule is a rule as the cache keeps it: parsed, with the warnings of
// its compilation (which depend on nothing but the rule).
type parsedRule struct {
	sr       *sigma.Rule
	compWarn []string
}

// loadBytesParsed is loadBytes that also returns the parsed rules of the
// file for the cache.
func loadBytesParsed(name string, data []byte, opts Options) (*LoadResult, []parsedRule) {
	res := &LoadResult{Files: 1}
	pr := sigma.Parse(name, data)
	res.Errors = append(res.Errors, pr.Errors...)
	res.Skipped = append(res.Skipped, pr.Skipped...)
	var parsed []parsedRule
	for _, sr := range pr.Rules {
		prog, compWarn, err := compileSigma(sr, opts)
		if err != nil {
			var se *sigma.Error
			if !errors.As(err, &se) {
				se = &sigma.Error{File: name, Line: sr.Line, RuleID: sr.ID, Title: sr.Title, Err: err}
			}
			res.Errors = append(res.Errors, se)
			continue
		}
		parsed = append(parsed, parsedRule{sr, compWarn})
		res.addRule(name, finishRule(sr, prog, compWarn, opts))
	}
	return res, parsed
}

// addRule appends a built rule and its warnings.
func (res *LoadResult) addRule(name string, r *Rule) {
	for i, w := range r.Warnings {
		line := r.Sigma.Line
		if l := r.warningLine(i); l > 0 {
			line = l
		}
		res.Warnings = append(res.Warnings, &LoadError{File: name, Line: line, RuleID: r.Sigma.ID, Title: r.Sigma.Title, Err: errors.New(w)})
	}
	res.Rules = append(res.Rules, r)
}

// buildRule compiles a parsed rule and fills its ATT&CK facts, confidence
// and recommendations.
func buildRule(sr *sigma.Rule, opts Options) (*Rule, []string, error) {
	prog, compWarn, err := compileSigma(sr, opts)
	if err != nil {
		return nil, nil, err
	}
	r := finishRule(sr, prog, compWarn, opts)
	return r, r.Warnings, nil
}

// compileSigma compiles a rule's detection (nil for a correlation rule)
// and returns the warnings of its values.
func compileSigma(sr *sigma.Rule, opts Options) (*program, []string, error) {
	if sr.Correlation != nil {
		return nil, nil, nil
	}
	vc := &valueCompiler{placeholders: opts.Placeholders, fieldID: fieldID}
	prog, err := compileRule(sr, vc)
	if err != nil {
		return nil, nil, err
	}
	return prog, vc.warnings, nil
}

// finishRule builds the Rule of a compiled rule: its ATT&CK facts,
// confidence and recommendations. A nil prog of a rule that is not a
// correlation is compiled on first use (a rule from the cache, known to
// compile).
func finishRule(sr *sigma.Rule, prog *program, compWarn []string, opts Options) *Rule {
	source := opts.Source
	if sr.Correlation != nil {
		source = SourceCorrelation
	}
	r := &Rule{
		ID: sr.ID, Name: sr.Name, Title: sr.Title, Correlation: sr.Correlation, Author: sr.Author, Source: source, Path: sr.File, Line: sr.Line,
		Status: sr.Status, Level: sr.Level, Severity: ParseSeverity(sr.Level), Description: sr.Description,
		Confidence: sr.Confidence, Recommendations: sr.Recommendations,
		FalsePositives: sr.FalsePositives, References: sr.References, Tags: sr.Tags,
		Logsource: sr.Logsource, Sigma: sr, prog: prog, placeholders: opts.Placeholders,
	}
	if prog == nil && sr.Correlation == nil {
		r.lazy = &lazyProgram{}
	}
	resolveAttack(r, opts.KB)
	r.narrow = newNarrowing(r, opts.KB)
	if r.Confidence == "" {
		r.Confidence, r.ConfidenceDerived = DeriveConfidence(r.Status, r.Level, r.FalsePositives), true
	}
	if r.Recommendations == "" {
		r.Recommendations, r.RecommendationsDerived = DeriveRecommendations(opts.KB, r.Techniques), true
	}
	r.Warnings = append(r.Warnings, compWarn...)
	return r
}

// lazyProgram compiles a cached rule's program once, on first use.
type lazyProgram struct {
	once sync.Once
	prog *program
}

// program returns the rule's compiled detection: nil for a correlation
// rule (or a cached rule that unexpectedly no longer compiles).
func (r *Rule) program() *program {
	if r.prog != nil || r.lazy == nil {
		return r.prog
	}
	r.lazy.once.Do(func() {
		vc := &valueCompiler{placeholders: r.placeholders, fieldID: fieldID}
		if p, err := compileRule(r.Sigma, vc); err == nil {
			r.lazy.prog = p
		}
	})
	return r.lazy.prog
}
