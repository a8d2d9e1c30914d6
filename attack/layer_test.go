package attack

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestNewLayer(t *testing.T) {
	kb, err := Embedded()
	if err != nil {
		t.Fatal(err)
	}
	l := NewLayer(kb, "hits", "test", "hits", map[string]LayerScore{
		"T1003.001": {Score: 3, Names: []string{"rule b", "rule a", "rule b"}},
		"t1197":     {Score: 1, Names: []string{"bits"}},
		"T1562.001": {Score: 2}, // revoked in v19: stays the v18.1 technique here
	})
	var buf bytes.Buffer
	if err := l.Write(&buf); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["versions"].(map[string]any)["layer"] != "4.5" || doc["domain"] != "enterprise-attack" {
		t.Fatalf("layer header: %v", doc)
	}
	cells := map[string]LayerTechnique{}
	for _, c := range l.Techniques {
		cells[c.TechniqueID+"/"+c.Tactic] = c
	}
	lsass, ok := cells["T1003.001/credential-access"]
	if !ok || *lsass.Score != 3 || lsass.Comment != "rule a; rule b" || len(lsass.Metadata) != 2 {
		t.Fatalf("T1003.001 cell: %+v", lsass)
	}
	// T1197 has two tactics: one cell under each.
	if _, ok := cells["T1197/defense-evasion"]; !ok {
		t.Fatalf("T1197 under defense-evasion missing: %v", cells)
	}
	if _, ok := cells["T1197/persistence"]; !ok {
		t.Fatal("T1197 under persistence missing")
	}
	if l.Gradient.MaxValue != 3 {
		t.Fatalf("gradient max %v", l.Gradient.MaxValue)
	}
}
