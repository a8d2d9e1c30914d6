// Package ruleset assembles the rules Quarry runs: the builtin IoA pack, the
// rules in the data directory, and rule files or folders named on the
// command line (the user's own, or SigmaHQ's), each marked with its source.
package ruleset

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/detections/rules"
)

// DataSubdir is the folder of a data directory whose rules load as custom.
const DataSubdir = "rules"

// Config says which rules to load.
type Config struct {
	// Builtin loads Quarry's IoA pack.
	Builtin bool
	// DataDir, when set, loads <DataDir>/rules/ as custom rules if present.
	DataDir string
	// Custom are files or folders of the user's rules (source custom).
	Custom []string
	// Sigma are files or folders of SigmaHQ rules (source sigma).
	Sigma []string
	// KB resolves techniques; nil uses the embedded ATT&CK.
	KB *attack.KB
	// CacheDir keeps parsed rule files for faster loads (see
	// detections.Options.CacheDir); "" loads without a cache.
	CacheDir string
}

// CacheDir returns the rule cache directory of a data directory.
func CacheDir(dataDir string) string {
	if dataDir == "" {
		return ""
	}
	return filepath.Join(dataDir, "cache")
}

// Load loads the configured rules. Rule problems are in the result (a broken
// rule never stops the others); the error is for a path that cannot be read
// at all.
func Load(cfg Config) (*detections.LoadResult, error) {
	all := &detections.LoadResult{}
	if cfg.Builtin {
		res, err := LoadFS(rules.FS, ".", detections.Options{Source: detections.SourceBuiltin, KB: cfg.KB})
		if err != nil {
			return nil, fmt.Errorf("builtin rules: %w", err)
		}
		merge(all, res)
	}
	if cfg.DataDir != "" {
		dir := filepath.Join(cfg.DataDir, DataSubdir)
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			res, err := detections.LoadDir(dir, detections.Options{Source: detections.SourceCustom, KB: cfg.KB, CacheDir: cfg.CacheDir})
			if err != nil {
				return nil, err
			}
			merge(all, res)
		}
	}
	for _, group := range []struct {
		paths  []string
		source detections.Source
	}{{cfg.Custom, detections.SourceCustom}, {cfg.Sigma, detections.SourceSigma}} {
		for _, p := range group.paths {
			res, err := loadPath(p, detections.Options{Source: group.source, KB: cfg.KB, CacheDir: cfg.CacheDir})
			if err != nil {
				return nil, err
			}
			merge(all, res)
		}
	}
	return all, nil
}

// loadPath loads a rule file or, recursively, a folder of them.
func loadPath(p string, opts detections.Options) (*detections.LoadResult, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	if fi.IsDir() {
		return detections.LoadDir(p, opts)
	}
	return detections.LoadFiles([]string{p}, opts)
}

// LoadFS loads every .yml/.yaml file under dir of fsys, in path order.
func LoadFS(fsys fs.FS, dir string, opts detections.Options) (*detections.LoadResult, error) {
	var names []string
	err := fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != dir && strings.HasPrefix(d.Name(), ".") {
				return fs.SkipDir
			}
			return nil
		}
		if ext := path.Ext(p); ext == ".yml" || ext == ".yaml" {
			names = append(names, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	all := &detections.LoadResult{}
	for _, n := range names {
		data, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, err
		}
		res, err := detections.LoadBytes(n, data, opts)
		if err != nil {
			return nil, err
		}
		merge(all, res)
	}
	return all, nil
}

func merge(dst, src *detections.LoadResult) {
	dst.Rules = append(dst.Rules, src.Rules...)
	dst.Errors = append(dst.Errors, src.Errors...)
	dst.Warnings = append(dst.Warnings, src.Warnings...)
	dst.Skipped = append(dst.Skipped, src.Skipped...)
	dst.Files += src.Files
}

// Filter keeps the rules at or above a minimum severity, and the rules the
// kept correlation rules name.
func Filter(rs []*detections.Rule, min detections.Severity) []*detections.Rule {
	if min <= detections.SeverityUnknown {
		return rs
	}
	// The rules a kept correlation names stay, whatever their level: it
	// needs their hits (callers hide their own hits below min).
	named := map[string]bool{}
	for _, r := range rs {
		if r.Correlation != nil && r.Severity >= min {
			for _, n := range r.Correlation.Rules {
				named[n] = true
			}
		}
	}
	out := rs[:0:0]
	for _, r := range rs {
		if r.Severity >= min || (r.Correlation == nil && (named[r.ID] || named[r.Name] && r.Name != "")) {
			out = append(out, r)
		}
	}
	return out
}
