package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/importers"
)

// recordings expands the paths given to import or scan into recordings:
// a directory into the files under it in a known format, a zip archive
// into its members. Files passed over (in no known format) are listed on
// errOut with why; failed lists the paths that could not be read at all,
// given or found under a directory (unreadable, a damaged archive).
func recordings(paths []string, errOut io.Writer) (ins []importers.Input, skipped int, failed []string) {
	for _, p := range paths {
		in, skips, err := importers.Inputs(p)
		if err != nil {
			fmt.Fprintf(errOut, "quarry: %v\n", err)
			failed = append(failed, p)
			continue
		}
		for _, s := range skips {
			if s.Failed {
				msg := s.Reason // most name the file already
				if !strings.Contains(msg, s.Name) {
					msg = s.Name + ": " + msg
				}
				fmt.Fprintf(errOut, "quarry: %s\n", msg)
				failed = append(failed, s.Name)
				continue
			}
			fmt.Fprintf(errOut, "quarry: skipped %s: %s\n", s.Name, s.Reason)
			skipped++
		}
		ins = append(ins, in...)
	}
	return ins, skipped, failed
}

// isWarning reports whether a recording that could not be opened is
// worth a warning only: a recording of a known format that is damaged
// (an EVTX file whose header is broken). Other failures (a missing or
// unreadable file, an unknown format) fail the command.
func isWarning(err error) bool {
	return errors.Is(err, importers.ErrDamaged) && !errors.Is(err, fs.ErrPermission) && !errors.Is(err, fs.ErrNotExist)
}

// fileBar is the progress of one recording: events read, bytes per
// second, and percent of the file's bytes.
type fileBar struct {
	bar    *progressbar.ProgressBar
	r      interface{ Offset() int64 }
	name   string
	events int
}

// newFileBar starts a bar on w (io.Discard when no one watches, and then
// without colour).
func newFileBar(w io.Writer, in importers.Input, format importers.Format, r telemetry.Reader) *fileBar {
	b := &fileBar{name: fmt.Sprintf("%s (%s)", shortPath(in.Name), format)}
	size := in.Size
	or, ok := r.(interface{ Offset() int64 })
	if ok {
		b.r = or
	} else {
		size = -1
	}
	color := w != io.Discard
	if color {
		b.name = "[cyan]" + b.name + "[reset]"
	}
	name := b.name
	b.bar = progressbar.NewOptions64(size,
		progressbar.OptionSetWriter(w),
		progressbar.OptionEnableColorCodes(color),
		progressbar.OptionSetDescription(name),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetPredictTime(true),
	)
	return b
}

// update records that n more events were read.
func (b *fileBar) update(n int) {
	b.events += n
	desc := fmt.Sprintf("%s %d events", b.name, b.events)
	b.bar.Describe(desc)
	if b.r != nil {
		b.bar.Set64(b.r.Offset())
	}
}

func (b *fileBar) finish() { b.bar.Finish() }

// hostFill gives events that name no host one: the --host override is set
// by the importers; a record without a host name gets this machine's name,
// and the summary says so (hosts says which hosts events were stored as).
type hostFill struct {
	fallback  string
	defaulted int
	hosts     map[string]*int
}

func (h *hostFill) fill(ev *telemetry.Event) {
	if ev.Host == "" {
		ev.Host = h.fallback
		h.defaulted++
	}
	if h.hosts == nil {
		h.hosts = map[string]*int{}
	}
	// ev.Host may share a reader's buffer: the map keeps a copy, and a
	// count is raised through its pointer (assigning to an existing key
	// would store ev.Host's bytes as the key).
	if n := h.hosts[ev.Host]; n != nil {
		*n++
	} else if len(h.hosts) < 1000 {
		n := 1
		h.hosts[strings.Clone(ev.Host)] = &n
	}
}

// print says which hosts the events were read as, and how many named none.
func (h *hostFill) print(w io.Writer, override bool) {
	if len(h.hosts) == 0 {
		return
	}
	names := make([]string, 0, len(h.hosts))
	for n := range h.hosts {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return *h.hosts[names[i]] > *h.hosts[names[j]] })
	var parts []string
	for i, n := range names {
		if i == 5 {
			parts = append(parts, fmt.Sprintf("%d more", len(names)-5))
			break
		}
		parts = append(parts, fmt.Sprintf("%s (%d)", n, *h.hosts[n]))
	}
	how := "as the recordings name them"
	if override {
		how = "as given by --host"
	}
	fmt.Fprintf(w, "hosts (%s): %s\n", how, strings.Join(parts, ", "))
	if h.defaulted > 0 {
		fmt.Fprintf(w, "  %d event(s) name no host: read as %s, this machine's name (--host NAME sets one)\n", h.defaulted, h.fallback)
	}
}
