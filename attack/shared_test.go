package attack

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestParseSharedBundle parses MITRE's v18.1 bundle and checks it gives the
// embedded data (which go generate built from it).
func TestParseSharedBundle(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: parses a 50 MB bundle")
	}
	dir := sharedAttackDir(t)
	kb := parseFile(t, filepath.Join(dir, "enterprise-attack.json"))
	c := kb.Counts()
	if c.Techniques != 691 || c.ParentTechniques != 216 || c.Subtechniques != 475 || c.Tactics != 14 ||
		c.Mitigations != 44 || c.Groups != 172 || c.Software != 784 {
		t.Errorf("Counts() = %+v", c)
	}
	ov, err := ReadOverlayDir(filepath.Join(dir, "v19"))
	if err != nil {
		t.Fatal(err)
	}
	var a, b bytes.Buffer
	if err := WriteCompact(&a, kb.WithOverlay(ov)); err != nil {
		t.Fatal(err)
	}
	if err := WriteCompact(&b, mustEmbedded(t)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("embedded data is stale: run go generate ./attack/...")
	}
}

func TestReadOverlayDirErrors(t *testing.T) {
	if _, err := ReadOverlayDir(t.TempDir()); err == nil {
		t.Error("empty dir: no error")
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, overlayTacticsFile), []byte(`{"meta": {"attack_version": "19.0"}, "tactics": [{"id": 5}]}`), 0o644)
	if _, err := ReadOverlayDir(dir); err == nil {
		t.Error("bad tactics file: no error")
	}
}

func BenchmarkParseSTIX(b *testing.B) {
	path := filepath.Join(sharedAttackDir(b), "enterprise-attack.json")
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := ParseSTIX(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}
