package importers

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/quarry-sec/quarry/telemetry"
)

// Clock offsets. Sysmon's UtcTime is UTC; the TimeCreated (or @timestamp)
// that exports write beside it is, in some recordings, the lab's local time
// marked as UTC. Records that carry only TimeCreated (Security 4688, most
// other channels) are then hours off the Sysmon records of the same
// processes. Where a file's Sysmon records show TimeCreated offset from
// UtcTime by a whole number of quarter hours, that offset is applied to the
// records of the same host that only have TimeCreated.
//
// The offset of a host is learnt from its first Sysmon record carrying both
// times. So that records before it are corrected too, Open reads ahead
// (prescan) until it learns one host's offset, at most prescanRecords
// records; another host's records before its own first Sysmon record are
// left as they are.

const (
	quarterHour = 15 * time.Minute
	// offsetSlack is how far from a whole number of quarter hours the gap
	// between UtcTime and TimeCreated may be (a record is written a moment
	// after what it records).
	offsetSlack = time.Minute
	// prescanRecords bounds Open's read-ahead for a clock offset.
	prescanRecords = 5000
)

// clockFix holds the offsets learnt per host and what was corrected.
type clockFix struct {
	offsets   map[string]time.Duration // host → UtcTime − TimeCreated
	corrected map[string]*int          // host → records corrected
}

// The host strings handed to learn and fix may share a reader's buffer,
// which the next record overwrites: the maps keep copies, and a count is
// raised through its pointer, since assigning to an existing string key
// also replaces the stored key with the one assigned with.

func newClockFix() *clockFix {
	return &clockFix{offsets: map[string]time.Duration{}, corrected: map[string]*int{}}
}

// learn takes a Sysmon record's two times; false when they tell nothing
// (not a whole number of quarter hours apart).
func (c *clockFix) learn(host string, utc, created time.Time) bool {
	if _, ok := c.offsets[host]; ok {
		return true
	}
	d := utc.Sub(created)
	q := d.Round(quarterHour)
	if diff := d - q; diff > offsetSlack || diff < -offsetSlack {
		return false
	}
	c.offsets[strings.Clone(host)] = q
	return true
}

// fix corrects the time of a record that has only TimeCreated.
func (c *clockFix) fix(e *telemetry.Event) {
	if d := c.offsets[e.Host]; d != 0 && !e.Time.IsZero() {
		e.Time = e.Time.Add(d)
		n := c.corrected[e.Host]
		if n == nil {
			n = new(int)
			c.corrected[strings.Clone(e.Host)] = n
		}
		*n++
	}
}

// notices describes the corrections made, one line per host.
func (c *clockFix) notices(path string) []string {
	// One line per offset: a file of many hosts sharing a clock setting
	// says it once, naming a few of them.
	type group struct {
		hosts   []string
		records int
	}
	groups := map[time.Duration]*group{}
	for host, n := range c.corrected {
		d := c.offsets[host]
		g := groups[d]
		if g == nil {
			g = &group{}
			groups[d] = g
		}
		g.hosts = append(g.hosts, host)
		g.records += *n
	}
	var out []string
	for d, g := range groups {
		sort.Strings(g.hosts)
		dir := "behind"
		if d < 0 {
			dir, d = "ahead of", -d
		}
		where := "host " + g.hosts[0]
		if len(g.hosts) > 1 {
			shown := g.hosts[:min(3, len(g.hosts))]
			where = fmt.Sprintf("%d hosts (%s", len(g.hosts), strings.Join(shown, ", "))
			if len(g.hosts) > len(shown) {
				where += ", …"
			}
			where += ")"
		}
		out = append(out, fmt.Sprintf("file %s: TimeCreated is %s %s UtcTime on %s; corrected (%d record(s) without UtcTime)",
			path, fmtOffset(d), dir, where, g.records))
	}
	sort.Strings(out)
	return out
}

func fmtOffset(d time.Duration) string {
	return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
}

// Noticer is implemented by readers that corrected something in what they
// read (a clock offset) and say so once per file.
type Noticer interface {
	Notices() []string
}

// Notices returns what r corrected in its file, nil when nothing.
func Notices(r telemetry.Reader) []string {
	if n, ok := r.(Noticer); ok {
		return n.Notices()
	}
	return nil
}

// Notices says which clock offsets were corrected in the file.
func (r *winJSONReader) Notices() []string {
	if r.cfg.clock == nil {
		return nil
	}
	return r.cfg.clock.notices(r.path)
}

// Notices says which clock offsets were corrected in the file.
func (r *evtxReader) Notices() []string {
	if r.cfg.clock == nil {
		return nil
	}
	return r.cfg.clock.notices(r.path)
}
