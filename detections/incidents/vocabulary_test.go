package incidents_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/detections/incidents"
	"github.com/quarry-sec/quarry/telemetry"
)

// TestOneTacticVocabulary: a builtin rule's defense-evasion and a SigmaHQ
// rule's stealth or defense-impairment are one v18.1 tactic for grouping
// and scoring.
func TestOneTacticVocabulary(t *testing.T) {
	st := openStore(t)
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	if err := st.AppendHits(context.Background(), []telemetry.Hit{
		{HitID: "a", TechniqueID: "T1562.001", Tactic: "defense-evasion", Time: t0, Host: "h"},
		{HitID: "b", TechniqueID: "T1685", Tactic: "defense-impairment", Time: t0, Host: "h"},
		{HitID: "c", TechniqueID: "T1027", Tactic: "stealth,execution", Time: t0, Host: "h"},
	}); err != nil {
		t.Fatal(err)
	}
	hits, err := incidents.LoadHits(context.Background(), st, "h", t0, t0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range hits {
		got = append(got, strings.Join(h.Tactics, "+"))
	}
	if strings.Join(got, " ") != "defense-evasion defense-evasion execution+defense-evasion" {
		t.Errorf("tactics = %q", got)
	}
}
