package attack

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Update replaces a data directory's knowledge base with one parsed from the
// STIX bundle at stixPath, with the embedded v19 overlay laid over it where
// it still applies (a bundle of v19 or later gets none). The new data is
// parsed, validated and re-read before it is written to a temporary file and
// renamed into place, so on any error nothing changes and the previous data
// stays in use. It returns the new knowledge base.
func Update(dataDir, stixPath string) (*KB, error) {
	if dataDir == "" {
		return nil, errors.New("update attack data: no data directory")
	}
	f, err := os.Open(stixPath)
	if err != nil {
		return nil, fmt.Errorf("update attack data: %w", err)
	}
	defer f.Close()
	kb, err := ParseSTIX(f)
	if err != nil {
		return nil, fmt.Errorf("update attack data from %s: %w", stixPath, err)
	}
	ov, err := EmbeddedOverlay()
	if err != nil {
		return nil, fmt.Errorf("update attack data: %w", err)
	}
	kb = kb.WithOverlay(ov)
	var buf bytes.Buffer
	if err := WriteCompact(&buf, kb); err != nil {
		return nil, fmt.Errorf("update attack data: %w", err)
	}
	if _, err := ReadCompact(bytes.NewReader(buf.Bytes())); err != nil {
		return nil, fmt.Errorf("update attack data: written data does not read back: %w", err)
	}
	if err := writeFileAtomic(DataPath(dataDir), buf.Bytes()); err != nil {
		return nil, fmt.Errorf("update attack data: %w", err)
	}
	return kb, nil
}

// writeFileAtomic writes data to path through a temporary file in the same
// folder, synced and then renamed over path.
func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp.Name(), err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err = os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp.Name(), err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename into %s: %w", path, err)
	}
	return nil
}
