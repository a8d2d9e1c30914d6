package intel

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Format names a feed's format.
type Format string

// The feed formats Quarry reads.
const (
	FormatSTIX  Format = "stix"
	FormatMISP  Format = "misp"
	FormatPlain Format = "plain"
)

// SourceOf is the source name a feed file gets when none is given: its
// base name without the extension ("c2-week.txt": "c2-week").
func SourceOf(file string) string {
	base := filepath.Base(file)
	return strings.TrimSuffix(base, filepath.Ext(base))
}

// Options tune a load.
type Options struct {
	// Source names the feed; required.
	Source string
	// Confidence (0–100) is given to indicators whose feed states none.
	Confidence int
	// TTL, when positive, makes indicators whose feed gives no end of
	// validity expire that long after the load.
	TTL time.Duration
	// Now is the load's time (time.Now when zero).
	Now time.Time
}

// ParseTTL reads a time to live: a Go duration (24h) or a number of days
// (30d), positive.
func ParseTTL(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		if d, err := strconv.Atoi(n); err == nil && d > 0 {
			return time.Duration(d) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q: want a positive duration (24h) or days (30d)", s)
	}
	return d, nil
}

// DefaultConfidence is the confidence of indicators when neither the feed
// nor the options give one.
const DefaultConfidence = 50

// Skip is an entry of a feed that was not loaded, and why.
type Skip struct {
	Ref    string // object id, attribute uuid, or "file:line"
	Reason string
	// Unsupported is true for a valid entry Quarry does not match (a STIX
	// pattern with AND, a MISP attribute type such as email-src), false for
	// an invalid one.
	Unsupported bool
}

// Feed is what one load of one file yields: its indicators, merged (one per
// type and value), and the entries skipped.
type Feed struct {
	Source     string
	Format     Format
	Origin     string // the file read
	Indicators []Indicator
	Skipped    []Skip
	// Duplicates counts entries merged into an indicator already read.
	Duplicates int
	// Total counts the entries read (loaded, merged or skipped).
	Total int

	index map[feedKey]int
	opts  Options
}

func newFeed(format Format, origin string, o Options) *Feed {
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.Confidence == 0 {
		o.Confidence = DefaultConfidence
	}
	return &Feed{Source: o.Source, Format: format, Origin: origin, index: map[feedKey]int{}, opts: o}
}

// add merges an indicator into the feed: a duplicate keeps the highest
// confidence, the latest end of validity (none beats any) and the union of
// ATT&CK links.
func (f *Feed) add(in Indicator) {
	f.Total++
	in.Source = f.Source
	if in.Confidence <= 0 {
		in.Confidence = f.opts.Confidence
	}
	in.Confidence = min(in.Confidence, 100)
	if in.ValidUntil.IsZero() && f.opts.TTL > 0 {
		in.ValidUntil = f.opts.Now.Add(f.opts.TTL)
	}
	in.FirstSeen, in.Updated = f.opts.Now, f.opts.Now
	key := feedKey{in.Type, in.Value}
	i, ok := f.index[key]
	if !ok {
		in.Techniques, in.Groups, in.Malware = uniq(in.Techniques), uniq(in.Groups), uniq(in.Malware)
		f.index[key] = len(f.Indicators)
		f.Indicators = append(f.Indicators, in)
		return
	}
	f.Duplicates++
	cur := &f.Indicators[i]
	cur.Confidence = max(cur.Confidence, in.Confidence)
	if cur.ValidUntil.IsZero() || in.ValidUntil.IsZero() {
		cur.ValidUntil = time.Time{}
	} else if in.ValidUntil.After(cur.ValidUntil) {
		cur.ValidUntil = in.ValidUntil
	}
	cur.Techniques = uniq(append(cur.Techniques, in.Techniques...))
	cur.Groups = uniq(append(cur.Groups, in.Groups...))
	cur.Malware = uniq(append(cur.Malware, in.Malware...))
}

// feedKey identifies an indicator within a feed (it shares the value's
// string).
type feedKey struct {
	t Type
	v string
}

func (f *Feed) skip(ref, reason string, unsupported bool) {
	f.Total++
	f.Skipped = append(f.Skipped, Skip{Ref: ref, Reason: reason, Unsupported: unsupported})
}

// Unsupported counts the skipped entries that were valid but unsupported.
func (f *Feed) Unsupported() int {
	n := 0
	for _, s := range f.Skipped {
		if s.Unsupported {
			n++
		}
	}
	return n
}

// uniq sorts and de-duplicates a list, dropping empty entries.
func uniq(s []string) []string {
	s = slices.DeleteFunc(s, func(v string) bool { return v == "" })
	if len(s) == 0 {
		return nil
	}
	slices.Sort(s)
	return slices.Compact(s)
}

// Read reads a feed in the given format ("" detects it: a JSON object of
// type bundle is STIX, one holding Event or response is MISP, anything else
// a plain list). name is the file's name for messages.
func Read(r io.Reader, name string, format Format, o Options) (*Feed, error) {
	if o.Source == "" {
		return nil, fmt.Errorf("%s: no source name", name)
	}
	if o.Confidence < 0 || o.Confidence > 100 {
		return nil, fmt.Errorf("%s: confidence %d is not within 0–100", name, o.Confidence)
	}
	br := bufio.NewReaderSize(r, 64<<10)
	if format == "" {
		head, _ := br.Peek(4096)
		format = sniff(head)
	}
	switch format {
	case FormatSTIX:
		return ReadSTIX(br, name, o)
	case FormatMISP:
		return ReadMISP(br, name, o)
	case FormatPlain:
		return ReadPlain(br, name, o)
	}
	return nil, fmt.Errorf("%s: unknown format %q (stix, misp or plain)", name, format)
}

func sniff(head []byte) Format {
	t := bytes.TrimLeft(head, " \t\r\n\ufeff")
	if len(t) == 0 || (t[0] != '{' && t[0] != '[') {
		return FormatPlain
	}
	s := string(t)
	if strings.Contains(s, `"bundle"`) || strings.Contains(s, `"spec_version"`) {
		return FormatSTIX
	}
	if strings.Contains(s, `"Event"`) || strings.Contains(s, `"response"`) {
		return FormatMISP
	}
	return FormatSTIX
}
