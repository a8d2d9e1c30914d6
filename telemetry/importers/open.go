package importers

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/quarry-sec/quarry/telemetry"
)

// Option configures Open.
type Option func(*config)

type config struct {
	format       Format
	host         string // override for every event when hostOverride
	hostOverride bool
	defaultHost  string // used when a record names no host
	clock        *clockFix
}

// WithHost sets every event's host_identifier to name, whatever the records
// say.
func WithHost(name string) Option {
	return func(c *config) { c.host, c.hostOverride = name, true }
}

// WithDefaultHost sets the host_identifier of events whose record names no
// host (auditd logs without node=, for instance). A record's own
// Computer/Hostname wins over it.
func WithDefaultHost(name string) Option {
	return func(c *config) { c.defaultHost = name }
}

// WithFormat forces a format instead of detecting it; FormatAuto detects.
func WithFormat(f Format) Option {
	return func(c *config) { c.format = f }
}

// hostFor picks an event's host: the override, else the record's, else the
// default.
func (c *config) hostFor(record string) string {
	switch {
	case c.hostOverride:
		return c.host
	case record != "":
		return record
	}
	return c.defaultHost
}

const readBufferSize = 64 << 10

// Open opens a recording and returns a Reader over its events and the format
// it was read as. The format is detected from the file's first bytes unless
// WithFormat forces one; a gzip-compressed file is read through (by its
// magic bytes, whatever its name). A file in no known format is an error
// naming the file and describing its first bytes. Every event is cut to the
// value bounds (MaxCommandLine, MaxScriptText, MaxValue) and marked
// Truncated when cut. The Reader has an Offset() int64 method: the bytes of
// the file read so far. A zip archive or a directory is read through Inputs.
func Open(path string, opts ...Option) (telemetry.Reader, Format, error) {
	cfg := config{format: FormatAuto}
	for _, o := range opts {
		o(&cfg)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, "", fmt.Errorf("importers: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, "", fmt.Errorf("importers: %w", err)
	}
	if fi.IsDir() {
		f.Close()
		return nil, "", fmt.Errorf("importers: %s is a directory", path)
	}
	cr := &countingReader{r: f}
	r, format, err := openStream(path, fi.Size(), cr, cr, f, &cfg)
	if err != nil {
		f.Close()
		return nil, "", err
	}
	return r, format, nil
}

// openStream reads a recording from in (rs is in when it can seek, else
// nil; c closes what is under it) and picks its reader. pos counts the bytes
// read, for Offset.
func openStream(name string, size int64, pos *countingReader, rs io.ReadSeeker, c io.Closer, cfg *config) (telemetry.Reader, Format, error) {
	br := bufio.NewReaderSize(pos, readBufferSize)
	closer := c
	if head, _ := br.Peek(len(gzipMagic)); bytes.Equal(head, gzipMagic) {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, "", fmt.Errorf("importers: %s: gzip: %w", name, err)
		}
		br = bufio.NewReaderSize(gz, readBufferSize)
		rs = nil
	}
	plain := rs != nil // a file read as it is: it can be read again
	format := cfg.format
	if format == "" || format == FormatAuto {
		head, _ := br.Peek(sniffSize)
		var err error
		format, err = detect(head)
		if errors.Is(err, errBinary) {
			return nil, "", fmt.Errorf("importers: file %s: binary data of unknown format (%d bytes)", name, size)
		}
		if err != nil {
			return nil, "", fmt.Errorf("importers: %s: %w", name, err)
		}
	}
	var r telemetry.Reader
	var err error
	reread := "" // the file the clock prescan reads ahead: the file itself, or its temporary copy
	if plain {
		reread = name
	}
	switch format {
	case FormatSysmonEVTX, FormatSysmonJSON, FormatSandboxReport:
		// EVTX seeks, a sandbox report is read twice (everything but the
		// API calls, then the calls) and Windows JSON is read ahead for
		// the clock: a compressed stream or an archive member is spooled
		// to a temporary file first.
		if rs == nil {
			var tmp *spooled
			if tmp, err = spool(br); err == nil {
				closer = closers{c, tmp}
				rs, br, reread = tmp.f, bufio.NewReaderSize(tmp.f, readBufferSize), tmp.f.Name()
			}
		}
	}
	switch {
	case err != nil:
	case format == FormatSysmonEVTX:
		r, err = newEVTXReader(rs, closer, name, cfg)
	case format == FormatSysmonJSON:
		r = newWinJSONReader(closer, br, name, cfg)
	case format == FormatAuditd:
		r = newAuditdReader(closer, br, name, cfg)
	case format == FormatAuditdJSON:
		r = newAuditdJSONReader(closer, br, name, cfg)
	case format == FormatSysmonLinuxSyslog:
		r = newSyslogXMLReader(closer, br, name, cfg)
	case format == FormatSandboxReport:
		r, err = newSandboxReader(rs, closer, name, cfg)
	default:
		err = fmt.Errorf("unknown format %q", format)
	}
	if err != nil {
		if closer != c {
			closer.Close()
		}
		return nil, "", fmt.Errorf("importers: %s: %w", name, err)
	}
	if format == FormatSysmonEVTX || format == FormatSysmonJSON {
		// The clock correction learns a host's offset from its first
		// Sysmon record; the file (or the temporary copy of a compressed
		// stream or an archive member) is read ahead for it, so records
		// before that one are corrected too.
		cfg.clock = newClockFix()
		if reread != "" {
			prescanClock(reread, format, *cfg)
		}
	}
	return &boundedReader{r: r, pos: pos}, format, nil
}

// prescanClock reads the start of a Windows recording, up to the first
// Sysmon record that tells its host's clock offset (or prescanRecords
// records), so the records before it are corrected too. A file it cannot
// read is left to the reader proper to report.
func prescanClock(path string, format Format, cfg config) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	pre := cfg
	pre.clock = newClockFix()
	var r telemetry.Reader
	switch format {
	case FormatSysmonEVTX:
		r, err = newEVTXReader(f, f, path, &pre)
	case FormatSysmonJSON:
		r = newWinJSONReader(f, bufio.NewReaderSize(f, readBufferSize), path, &pre)
	}
	if err != nil {
		return
	}
	var ev telemetry.Event
	for range prescanRecords {
		err := NextInto(r, &ev)
		if err == io.EOF || len(pre.clock.offsets) > 0 {
			break
		}
		var re *telemetry.RecordError
		if err != nil && !errors.As(err, &re) {
			break
		}
	}
	for h, d := range pre.clock.offsets {
		cfg.clock.offsets[h] = d
	}
}

// IntoReader is a Reader that can decode the next event into one the caller
// owns, reusing its Fields storage (reset and refilled) instead of making a
// new one per event: for scans that look at each event once. An event read
// this way is valid until the next NextInto on the same reader: its strings
// share a buffer that the next call overwrites, so strings.Clone what you
// keep (store batches keep Next, which returns fresh events). Errors are
// those of Next; on an error *ev is zeroed.
type IntoReader interface {
	telemetry.Reader
	NextInto(ev *telemetry.Event) error
}

// NextInto reads r's next event into ev: through IntoReader when r
// implements it, else with Next.
func NextInto(r telemetry.Reader, ev *telemetry.Event) error {
	if ir, ok := r.(IntoReader); ok {
		return ir.NextInto(ev)
	}
	e, err := r.Next()
	*ev = e
	return err
}
