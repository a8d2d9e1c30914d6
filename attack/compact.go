package attack

import (
	"bufio"
	"compress/gzip"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
)

// compactFormat is the version of the compact form; a reader refuses any
// other.
const compactFormat = 1

// compactFile is the compact form: a gob of the snapshot, gzip-compressed.
type compactFile struct {
	Format int
	Snap   snapshot
}

// WriteCompact writes kb in Quarry's compact form (gzip-compressed gob),
// which ReadCompact loads in a few tens of milliseconds.
func WriteCompact(w io.Writer, kb *KB) error {
	zw, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return fmt.Errorf("write compact attack data: %w", err)
	}
	if err := gob.NewEncoder(zw).Encode(compactFile{Format: compactFormat, Snap: kb.snap}); err != nil {
		return fmt.Errorf("write compact attack data: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("write compact attack data: %w", err)
	}
	return nil
}

// ReadCompact loads a KB written by WriteCompact.
func ReadCompact(r io.Reader) (*KB, error) {
	zr, err := gzip.NewReader(bufio.NewReaderSize(r, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("read compact attack data: %w", err)
	}
	defer zr.Close()
	var f compactFile
	if err := gob.NewDecoder(zr).Decode(&f); err != nil {
		return nil, fmt.Errorf("read compact attack data: %w", err)
	}
	if f.Format != compactFormat {
		return nil, fmt.Errorf("read compact attack data: format %d, want %d", f.Format, compactFormat)
	}
	if err := f.Snap.validate(); err != nil {
		return nil, fmt.Errorf("read compact attack data: %w", err)
	}
	return newKB(f.Snap), nil
}

// validate reports a snapshot no table could serve.
func (s *snapshot) validate() error {
	if len(s.Techniques) == 0 {
		return errors.New("no techniques")
	}
	if len(s.Tactics) == 0 {
		return errors.New("no tactics")
	}
	for i, t := range s.Techniques {
		if t.ID == "" {
			return fmt.Errorf("techniques[%d] has no ID", i)
		}
	}
	for i, t := range s.Tactics {
		if t.ID == "" || t.ShortName == "" {
			return fmt.Errorf("tactics[%d] has no ID or shortname", i)
		}
	}
	return nil
}
