package attack

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quarry-sec/quarry/internal/unprivileged"
)

func TestLoadWithoutDataUsesEmbedded(t *testing.T) {
	kb, err := Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if emb := mustEmbedded(t); kb != emb {
		t.Error("Load of an empty data dir did not return the embedded KB")
	}
}

func TestUpdate(t *testing.T) {
	dataDir := t.TempDir()
	kb, err := Update(dataDir, filepath.Join("testdata", "mini.json"))
	if err != nil {
		t.Fatal(err)
	}
	if kb.OverlayVersion() != VersionV19 {
		t.Error("Update did not lay the embedded overlay")
	}
	loaded, err := Load(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Counts() != kb.Counts() || loaded.Counts().Techniques != 2 {
		t.Errorf("Load after Update = %+v, want %+v", loaded.Counts(), kb.Counts())
	}
	before, err := os.ReadFile(DataPath(dataDir))
	if err != nil {
		t.Fatal(err)
	}

	// A failed update leaves the previous data in place and no temp file.
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"type": "bundle", "objects": [{"type": "indicator", "id": "x"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{bad, filepath.Join(t.TempDir(), "missing.json")} {
		if _, err := Update(dataDir, src); err == nil {
			t.Errorf("Update(%s) gave no error", src)
		}
	}
	after, err := os.ReadFile(DataPath(dataDir))
	if err != nil {
		t.Fatal(err)
	}
	if string(before) != string(after) {
		t.Error("a failed Update changed the data")
	}
	entries, _ := os.ReadDir(filepath.Dir(DataPath(dataDir)))
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temp file left behind: %s", e.Name())
		}
	}
	if loaded, err := Load(dataDir); err != nil || loaded.Counts().Techniques != 2 {
		t.Errorf("Load after failed Update: %v", err)
	}
}

func TestLoadCorruptData(t *testing.T) {
	dataDir := t.TempDir()
	if err := os.MkdirAll(filepath.Dir(DataPath(dataDir)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(DataPath(dataDir), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dataDir); err == nil || !strings.Contains(err.Error(), DataPath(dataDir)) {
		t.Errorf("Load(corrupt) error = %v, want one naming the file", err)
	}
	if _, err := Update("", "x"); err == nil {
		t.Error("Update without a data dir gave no error")
	}
}

func TestUpdateUnwritableDir(t *testing.T) {
	if unprivileged.NeedRerun() { // root writes a read-only folder: run as nobody
		unprivileged.Rerun(t)
		return
	}
	dataDir := t.TempDir()
	if err := os.Chmod(dataDir, 0o555); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dataDir, 0o755)
	if _, err := Update(dataDir, filepath.Join("testdata", "mini.json")); err == nil {
		t.Error("Update into a read-only dir gave no error")
	}
}
