package importers

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/quarry-sec/quarry/telemetry"
)

// Input is one recording to read: a file, or a member of a zip archive.
type Input struct {
	// Name is the file's path, or for a zip member the archive's path and
	// the member's name joined by "!" (logs.zip!Security.evtx).
	Name string
	// Size is the file's size in bytes (a member's uncompressed size), the
	// total that Offset counts to.
	Size int64

	archive, member string // for a zip member
}

// Skip is a file passed over while expanding a directory or an archive,
// with why (no known format, described).
type Skip struct {
	Name, Reason string
	// Failed marks a file that could not be read (permission denied, a
	// damaged archive), as against one read and found in no known format.
	Failed bool
}

// Inputs expands a path given to import or scan into the recordings to
// read. A directory yields every file under it (recursively, in name
// order) whose content is in a known format, and lists the others as
// skipped; a zip archive (known by its magic bytes) yields its members the
// same way; a gzip-compressed file is read through. Any other file is
// itself, whatever its content: Open reports what it holds.
func Inputs(path string) ([]Input, []Skip, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, nil, fmt.Errorf("importers: %w", err)
	}
	if !fi.IsDir() {
		if isZip(path) {
			return zipInputs(path)
		}
		return []Input{{Name: path, Size: fi.Size()}}, nil, nil
	}
	var ins []Input
	var skips []Skip
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			skips = append(skips, Skip{Name: p, Reason: err.Error(), Failed: true})
			if d != nil && d.IsDir() && p != path {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() || !d.Type().IsRegular() {
			return nil
		}
		if isZip(p) {
			zi, zs, err := zipInputs(p)
			if err != nil {
				skips = append(skips, Skip{Name: p, Reason: err.Error(), Failed: true})
			}
			ins, skips = append(ins, zi...), append(skips, zs...)
			return nil
		}
		info, err := d.Info()
		if err != nil {
			skips = append(skips, Skip{Name: p, Reason: err.Error(), Failed: true})
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			skips = append(skips, Skip{Name: p, Reason: err.Error(), Failed: true})
			return nil
		}
		reason := sniff(f, info.Size())
		f.Close()
		if reason != "" {
			skips = append(skips, Skip{Name: p, Reason: reason})
			return nil
		}
		ins = append(ins, Input{Name: p, Size: info.Size()})
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("importers: %w", err)
	}
	return ins, skips, nil
}

// isZip reports whether the file at p starts with a zip archive's magic.
func isZip(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, len(zipMagic))
	n, _ := io.ReadFull(f, head)
	return bytes.Equal(head[:n], zipMagic)
}

// sniff reads the start of r (through gzip when compressed) and returns
// why it is in no known format, or "" when it is in one.
func sniff(r io.Reader, size int64) string {
	br := bufio.NewReaderSize(r, sniffSize)
	if head, _ := br.Peek(len(gzipMagic)); bytes.Equal(head, gzipMagic) {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return "gzip: " + err.Error()
		}
		br = bufio.NewReaderSize(gz, sniffSize)
	}
	head, _ := br.Peek(sniffSize)
	_, err := detect(head)
	switch {
	case errors.Is(err, errBinary):
		return fmt.Sprintf("binary data of unknown format (%d bytes)", size)
	case err != nil:
		return err.Error()
	}
	return ""
}

// zipInputs lists the members of a zip archive in a known format.
func zipInputs(path string) ([]Input, []Skip, error) {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return nil, nil, fmt.Errorf("importers: %s: zip: %w", path, err)
	}
	defer zr.Close()
	var ins []Input
	var skips []Skip
	for _, f := range zr.File {
		if f.FileInfo().IsDir() {
			continue
		}
		name := path + "!" + f.Name
		size := int64(f.UncompressedSize64)
		rc, err := f.Open()
		if err != nil {
			skips = append(skips, Skip{Name: name, Reason: err.Error(), Failed: true})
			continue
		}
		reason := sniff(rc, size)
		rc.Close()
		if reason != "" {
			skips = append(skips, Skip{Name: name, Reason: reason})
			continue
		}
		ins = append(ins, Input{Name: name, Size: size, archive: path, member: f.Name})
	}
	sort.Slice(ins, func(i, j int) bool { return ins[i].Name < ins[j].Name })
	return ins, skips, nil
}

// Open opens the recording as Open does a file.
func (in Input) Open(opts ...Option) (telemetry.Reader, Format, error) {
	if in.archive == "" {
		return Open(in.Name, opts...)
	}
	cfg := config{format: FormatAuto}
	for _, o := range opts {
		o(&cfg)
	}
	zr, err := zip.OpenReader(in.archive)
	if err != nil {
		return nil, "", fmt.Errorf("importers: %s: zip: %w", in.archive, err)
	}
	var m *zip.File
	for _, f := range zr.File {
		if f.Name == in.member {
			m = f
			break
		}
	}
	if m == nil {
		zr.Close()
		return nil, "", fmt.Errorf("importers: %s: no member %s", in.archive, in.member)
	}
	rc, err := m.Open()
	if err != nil {
		zr.Close()
		return nil, "", fmt.Errorf("importers: %s: %w", in.Name, err)
	}
	c := closers{rc, zr}
	r, format, err := openStream(in.Name, in.Size, &countingReader{r: rc}, nil, c, &cfg)
	if err != nil {
		c.Close()
		return nil, "", err
	}
	return r, format, nil
}
