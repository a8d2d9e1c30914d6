package bench

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"
)

// ruleHeader is the part of a rule file used to select it.
type ruleHeader struct {
	Logsource struct {
		Product  string `yaml:"product"`
		Category string `yaml:"category"`
	} `yaml:"logsource"`
}

// ProcessCreationRules returns, sorted, every Windows process_creation rule
// file of a SigmaHQ checkout at sigmaDir: the windows/process_creation
// folders of rules and rules-threat-hunting, and the rules of
// rules-emerging-threats (grouped by year and threat, not by log source)
// whose logsource is product windows, category process_creation.
func ProcessCreationRules(sigmaDir string) ([]string, error) {
	var out []string
	for _, sub := range []string{"rules", "rules-threat-hunting"} {
		files, err := ymlFiles(filepath.Join(sigmaDir, sub, "windows", "process_creation"))
		if err != nil {
			return nil, err
		}
		out = append(out, files...)
	}
	files, err := ymlFiles(filepath.Join(sigmaDir, "rules-emerging-threats"))
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("select rules: %w", err)
		}
		var h ruleHeader
		// A file may hold several documents; the first names the log source.
		doc, _, _ := bytes.Cut(data, []byte("\n---"))
		if err := yaml.Unmarshal(doc, &h); err != nil {
			continue
		}
		if h.Logsource.Product == "windows" && h.Logsource.Category == "process_creation" {
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return out, nil
}

func ymlFiles(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".yml") || strings.HasSuffix(p, ".yaml")) {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list rules under %s: %w", dir, err)
	}
	return out, nil
}

// StageRules copies files into dir, flat and numbered so names never clash,
// for engines that load a whole directory.
func StageRules(files []string, dir string) error {
	for i, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("stage rules: %w", err)
		}
		dst := filepath.Join(dir, fmt.Sprintf("%04d_%s", i, filepath.Base(f)))
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			return fmt.Errorf("stage rules: %w", err)
		}
	}
	return nil
}
