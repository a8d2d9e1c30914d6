package ioa_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/detections/ruleset"
	"github.com/quarry-sec/quarry/extension/sqlengine"
	"github.com/quarry-sec/quarry/tables"
	"github.com/quarry-sec/quarry/tables/ioa"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

func TestIOATables(t *testing.T) {
	st, err := eventstore.Open(filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	hits := []telemetry.Hit{
		{HitID: "a", TechniqueID: "T1003.001", Time: t0, Host: "h1", RuleID: "r1", RuleAuthor: "Quarry team", Severity: "critical"},
		{HitID: "a", TechniqueID: "T1218.011", Time: t0, Host: "h1", RuleID: "r1", RuleAuthor: "Quarry team", Severity: "critical"},
		{HitID: "b", TechniqueID: "T1003", Time: t0.Add(time.Hour), Host: "h2", RuleID: "r2", Severity: "high"},
		{HitID: "c", TechniqueID: "T10031", Time: t0.Add(2 * time.Hour), Host: "h2", RuleID: "r3", Severity: "high"},
	}
	if err := st.AppendHits(context.Background(), hits); err != nil {
		t.Fatal(err)
	}
	res, err := ruleset.Load(ruleset.Config{Builtin: true})
	if err != nil {
		t.Fatal(err)
	}
	reg := tables.NewRegistry()
	if err := reg.Register(ioa.Hits(st, nil), ioa.Rules(ioa.StaticRules(res.Rules))); err != nil {
		t.Fatal(err)
	}
	e, err := sqlengine.Open(reg)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	count := func(q string) int64 {
		rows, err := e.Query(context.Background(), q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		defer rows.Close()
		var n int64
		rows.Next()
		rows.Scan(&n)
		return n
	}
	cases := map[string]int64{
		"SELECT count(*) FROM ioa_hits":                                           4,
		"SELECT count(DISTINCT hit_id) FROM ioa_hits":                             3,
		"SELECT count(*) FROM ioa_hits WHERE technique_id = 'T1003'":              1,
		"SELECT count(*) FROM ioa_hits WHERE technique_id LIKE 'T1003%'":          3, // LIKE semantics: T10031 too
		"SELECT count(*) FROM ioa_hits WHERE technique_id LIKE 't1003.%'":         1,
		"SELECT count(*) FROM ioa_hits WHERE host_identifier = 'h2'":              2,
		"SELECT count(*) FROM ioa_hits WHERE time >= " + itoa(t0.Unix()+1):        2,
		"SELECT count(*) FROM ioa_hits WHERE rule_id IN ('r1', 'r3')":             3,
		"SELECT count(*) FROM ioa_rules WHERE source = 'builtin'":                 countSource(res.Rules, detections.SourceBuiltin),
		"SELECT count(*) FROM ioa_rules WHERE source = 'correlation'":             countSource(res.Rules, detections.SourceCorrelation),
		"SELECT count(*) FROM ioa_rules WHERE logsource LIKE 'correlation/%'":     countSource(res.Rules, detections.SourceCorrelation),
		"SELECT count(*) FROM ioa_rules WHERE tags_only = 1 AND severity = 'low'": countLow(res.Rules),
	}
	for q, want := range cases {
		if got := count(q); got != want {
			t.Errorf("%s = %d, want %d", q, got, want)
		}
	}
	id := res.Rules[0].ID
	if got := count("SELECT count(*) FROM ioa_rules WHERE id = '" + id + "'"); got != 1 {
		t.Errorf("ioa_rules by id: %d", got)
	}
}

func countSource(rs []*detections.Rule, src detections.Source) int64 {
	var n int64
	for _, r := range rs {
		if r.Source == src {
			n++
		}
	}
	return n
}

// TestHitsOneVocabulary: hits of rules written against two ATT&CK versions
// (builtin defense-evasion/T1562.001, SigmaHQ defense-impairment/T1685)
// read in one version's tactics; an untagged rule's hit is 'untagged';
// detected_at selects by when the hit was found.
func TestHitsOneVocabulary(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	found := t0.Add(30 * 24 * time.Hour)
	st, err := eventstore.Open(filepath.Join(t.TempDir(), "events.db"), eventstore.WithClock(func() time.Time { return found }))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	hits := []telemetry.Hit{
		{HitID: "builtin", TechniqueID: "T1562.001", Tactic: "defense-evasion", Time: t0, Host: "h", RuleID: "r1"},
		{HitID: "sigma", TechniqueID: "T1685", Tactic: "defense-impairment", Time: t0, Host: "h", RuleID: "r2"},
		{HitID: "sigma2", TechniqueID: "T1027", Tactic: "stealth", Time: t0, Host: "h", RuleID: "r3"},
		{HitID: "none", TechniqueID: "", Tactic: "stealth", Time: t0, Host: "h", RuleID: "r4"},
	}
	if err := st.AppendHits(context.Background(), hits); err != nil {
		t.Fatal(err)
	}
	kb, err := attack.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	reg := tables.NewRegistry()
	if err := reg.Register(ioa.Hits(st, kb)); err != nil {
		t.Fatal(err)
	}
	e, err := sqlengine.Open(reg)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	column := func(q string) []string {
		rows, err := e.Query(context.Background(), q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var s string
			rows.Scan(&s)
			out = append(out, s)
		}
		return out
	}
	check := func(q string, want ...string) {
		t.Helper()
		if got := column(q); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%s = %q, want %q", q, got, want)
		}
	}
	check("SELECT DISTINCT tactic FROM ioa_hits ORDER BY 1", "defense-evasion")
	check("SELECT DISTINCT tactic FROM ioa_hits WHERE attack_version = '19' ORDER BY 1", "defense-impairment", "stealth")
	check("SELECT technique_name FROM ioa_hits WHERE hit_id = 'sigma'", "Disable or Modify Tools")
	check("SELECT technique_id FROM ioa_hits WHERE rule_id = 'r4'", "untagged")
	check("SELECT hit_id FROM ioa_hits WHERE technique_id = 'untagged'", "none")
	check("SELECT count(*) FROM ioa_hits WHERE technique_id = ''", "0")
	check("SELECT count(*) FROM ioa_hits WHERE attack_version = '17'", "0")
	check("SELECT count(*) FROM ioa_hits WHERE detected_at >= "+itoa(found.Unix()), "4")
	check("SELECT count(*) FROM ioa_hits WHERE detected_at < "+itoa(found.Unix()), "0")
	check("SELECT DISTINCT detected_at - time FROM ioa_hits", itoa(found.Unix()-t0.Unix()))
}
