package web_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/quarry-sec/quarry/detections"
)

// TestMatrixVersions checks the matrix in both ATT&CK versions with rules
// tagged by v18.1 and v19 IDs (SigmaHQ already uses v19's T1685): each
// rule is counted in a cell of either matrix, none drops out, and the v19
// matrix has its 15 tactics and names.
func TestMatrixVersions(t *testing.T) {
	kb, _ := knowledge(t)
	rule := func(id, tag string) []byte {
		return []byte(`title: Rule ` + tag + `
id: ` + id + `
author: Quarry tests
tags: [attack.` + tag + `]
logsource: {category: process_creation, product: windows}
detection:
    sel:
        Image|endswith: '\x.exe'
    condition: sel
level: medium
`)
	}
	var rules []*detections.Rule
	for i, tag := range []string{"t1562.001", "t1685", "t1686.003", "t1059.001"} {
		res, err := detections.LoadBytes(tag+".yml", rule("00000000-0000-4000-8000-00000000000"+string(rune('1'+i)), tag), detections.Options{KB: kb})
		if err != nil || len(res.Rules) != 1 {
			t.Fatalf("%s: %v %v", tag, err, res.Errors)
		}
		rules = append(rules, res.Rules...)
	}
	f := newFleetWithRules(t, rules)
	c := client(t)
	signIn(t, c, f.srv.URL, f.token)

	tactics := regexp.MustCompile(`<div class="tactic">`)
	cellScore := func(body, id string) string {
		m := regexp.MustCompile(`data-tech="` + regexp.QuoteMeta(id) + `">(?:<span class="nm">)?[^<]*(?:</span>|</a>)?(?:<span class="sc">(?:<i>([0-9.]+)</i>)?)?`).FindStringSubmatch(body)
		if m == nil {
			return "no cell"
		}
		return m[1]
	}

	_, v18 := get(t, c, f.srv.URL+"/matrix")
	if n := len(tactics.FindAllString(v18, -1)); n != 14 {
		t.Errorf("v18.1 matrix: %d tactics, want 14", n)
	}
	// T1562.001 (tagged) and T1685 (tagged; its v18.1 predecessor) in one
	// cell; T1686.003, new in v19, under T1562.004 (its parent T1686's
	// predecessor).
	if got := cellScore(v18, "T1562.001"); got != "2" {
		t.Errorf("v18.1 cell T1562.001 scores %q, want 2 (T1562.001 and T1685)", got)
	}
	if got := cellScore(v18, "T1562.004"); got != "1" {
		t.Errorf("v18.1 cell T1562.004 scores %q, want 1 (T1686.003)", got)
	}
	if got := cellScore(v18, "T1059.001"); got != "1" {
		t.Errorf("v18.1 cell T1059.001 scores %q, want 1", got)
	}
	if strings.Contains(v18, `id="unplaced"`) {
		t.Errorf("v18.1 matrix leaves techniques out: %s", regexp.MustCompile(`id="unplaced">[^<]*`).FindString(v18))
	}

	_, v19 := get(t, c, f.srv.URL+"/matrix?attack=19")
	if n := len(tactics.FindAllString(v19, -1)); n != 15 {
		t.Errorf("v19 matrix: %d tactics, want 15", n)
	}
	for _, name := range []string{"Stealth", "Defense Impairment", "Disable or Modify Tools"} {
		if !strings.Contains(v19, name) {
			t.Errorf("v19 matrix has no %q", name)
		}
	}
	if strings.Contains(v19, `data-tech="T1562.001"`) {
		t.Error("v19 matrix shows T1562.001, revoked in v19")
	}
	if got := cellScore(v19, "T1685"); got != "2" {
		t.Errorf("v19 cell T1685 scores %q, want 2 (T1685 and T1562.001)", got)
	}
	if got := cellScore(v19, "T1686.003"); got != "1" {
		t.Errorf("v19 cell T1686.003 scores %q, want 1", got)
	}

	_, layer := get(t, c, f.srv.URL+"/matrix/layer.json?layer=coverage&attack=19")
	var l struct {
		Versions   struct{ Attack string }
		Techniques []struct {
			TechniqueID string
			Score       float64
		}
	}
	if err := json.Unmarshal([]byte(layer), &l); err != nil {
		t.Fatal(err)
	}
	if l.Versions.Attack != "19" {
		t.Errorf("v19 layer: versions.attack %q", l.Versions.Attack)
	}
	scores := map[string]float64{}
	for _, te := range l.Techniques {
		scores[te.TechniqueID] = te.Score
	}
	if scores["T1685"] != 2 || scores["T1562.001"] != 0 {
		t.Errorf("v19 layer scores: T1685 %g, T1562.001 %g; want 2 and none", scores["T1685"], scores["T1562.001"])
	}
}
