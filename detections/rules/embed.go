// Package rules holds Quarry's own Indicator-of-Attack pack: Sigma rules
// written by the Quarry team (not copies of SigmaHQ), one per file, each with
// ATT&CK tags, a level, Quarry's confidence and recommendations, and a
// positive and a negative test event under tests/. README.md lists them and
// the pack's conventions.
//
// The engine loads the pack from FS (every *.yml at the root, one rule per
// file) with Source builtin; TestsFS holds the test events, one file per rule
// (tests/<rule file stem>.yml), for the rule test runner.
package rules

import "embed"

// FS is the builtin rule pack: one Sigma rule per *.yml file at its root,
// and under correlations/ the pack's correlation rules with the
// informational building-block rules they correlate.
//
//go:embed *.yml correlations/*.yml
var FS embed.FS

// TestsFS holds each rule's test events as tests/<rule file stem>.yml: the
// rule's file name, an optional product (linux) and lists of positive and
// negative events keyed by Sigma field names.
//
//go:embed tests/*.yml
var TestsFS embed.FS
