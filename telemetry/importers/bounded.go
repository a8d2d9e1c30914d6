package importers

import (
	"io"

	"github.com/quarry-sec/quarry/telemetry"
)

// countingReader counts the bytes read from (or sought to in) a file, for
// progress reporting.
type countingReader struct {
	r   io.Reader
	pos int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.pos += int64(n)
	return n, err
}

// Seek seeks when the underlying reader can.
func (c *countingReader) Seek(off int64, whence int) (int64, error) {
	s, ok := c.r.(io.Seeker)
	if !ok {
		return c.pos, errNotSeekable
	}
	n, err := s.Seek(off, whence)
	if err == nil {
		c.pos = n
	}
	return n, err
}

// boundedReader is what Open returns: the format's reader, with every event
// cut to the value bounds (see bound) and the position in the file known.
type boundedReader struct {
	r   telemetry.Reader
	pos *countingReader // nil when unknown
}

// Next returns the next event, bounded.
func (b *boundedReader) Next() (telemetry.Event, error) {
	e, err := b.r.Next()
	if err == nil {
		bound(&e)
	}
	return e, err
}

// NextInto reads the next event into ev, bounded (see IntoReader).
func (b *boundedReader) NextInto(ev *telemetry.Event) error {
	var err error
	if ir, ok := b.r.(IntoReader); ok {
		err = ir.NextInto(ev)
	} else {
		*ev, err = b.r.Next()
	}
	if err == nil {
		bound(ev)
	}
	return err
}

// Offset is how many bytes of the file (compressed bytes, for a compressed
// one) have been read so far.
func (b *boundedReader) Offset() int64 {
	if b.pos == nil {
		return 0
	}
	return b.pos.pos
}

// Close closes the file.
func (b *boundedReader) Close() error { return b.r.Close() }

// Notices passes on what the reader under b corrected in its file.
func (b *boundedReader) Notices() []string { return Notices(b.r) }
