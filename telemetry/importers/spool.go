package importers

import (
	"errors"
	"fmt"
	"io"
	"os"
)

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zipMagic  = []byte("PK\x03\x04")
)

// ErrDamaged marks a recording of a known format that cannot be read (an
// EVTX file whose header is broken): a caller may warn and go on.
var ErrDamaged = errors.New("damaged recording")

// errNotSeekable is a Seek on a stream.
var errNotSeekable = errors.New("not seekable")

// spooled is a temporary copy of a compressed recording that its reader
// must seek in (EVTX, sandbox reports); it is removed when closed.
type spooled struct{ f *os.File }

// spool copies r into a temporary file and rewinds it.
func spool(r io.Reader) (*spooled, error) {
	f, err := os.CreateTemp("", "quarry-spool-*")
	if err != nil {
		return nil, fmt.Errorf("spooling to a temporary file: %w", err)
	}
	s := &spooled{f: f}
	if _, err := io.Copy(f, r); err != nil {
		s.Close()
		return nil, fmt.Errorf("spooling to a temporary file: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		s.Close()
		return nil, fmt.Errorf("spooling to a temporary file: %w", err)
	}
	return s, nil
}

// Close closes and removes the copy.
func (s *spooled) Close() error {
	err := s.f.Close()
	if rerr := os.Remove(s.f.Name()); err == nil {
		err = rerr
	}
	return err
}

// closers closes several things, returning the first error.
type closers []io.Closer

func (cs closers) Close() error {
	var first error
	for _, c := range cs {
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
