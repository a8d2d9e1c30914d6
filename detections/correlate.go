package detections

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/quarry-sec/quarry/detections/sigma"
	"github.com/quarry-sec/quarry/telemetry"
)

// Correlation semantics (Sigma correlation rules):
//
//   - The hits of the rules a correlation names are grouped by the values
//     of its group-by fields (read from each hit's event; an alias names
//     the field per rule). A missing field groups as the empty value.
//   - A condition made only of gt/gte is decided as soon as it holds: over
//     a sliding window (the hits of the last timespan, both ends
//     included), event_count counts hits, value_count distinct values of
//     its field (hits without the field do not count), value_sum adds its
//     field's numbers (hits whose field is not a number do not count),
//     temporal needs every rule to have hit, temporal_ordered needs them in
//     the order listed (each hit no earlier than the previous rule's).
//     value_avg is always decided when the window closes (an average can
//     fall again). The correlation hit is emitted with the event that
//     completed it, and the group starts afresh.
//   - Any other condition (lt, lte, eq, neq: "at most", "exactly") can only
//     be decided once the window is over: a window opens with a group's
//     first hit and closes timespan later; when a later hit or Advance
//     passes its end, or at Flush, the count is compared and the hit, if
//     any, is emitted with the window's last event and its end as time.
//     A group that never saw a hit opens no window: absence of every hit
//     is not reported.
//   - Correlation hits carry the correlation rule's techniques and those of
//     the hits correlated.
//
// State lives per group and is dropped when its window is over, so memory
// follows the number of groups active within one timespan, bounded by
// MaxGroups per correlation (windows not opened beyond it are counted in
// Dropped); a value_count group keeps at most one more distinct value than
// its condition's largest number, a sliding value_sum group one number per
// hit of its timespan.

// DefaultMaxGroups bounds the open groups of one correlation rule.
const DefaultMaxGroups = 100_000

// valueCap is how many distinct values a value_count group need keep: one
// more than the largest number its condition compares with decides every
// comparison (beyond it, gt/gte hold and lt/lte/eq fail whatever comes).
func valueCap(spec *sigma.Correlation) int {
	c := 1
	for _, cmp := range spec.Condition {
		c = max(c, int(math.Floor(cmp.Value))+1)
	}
	return c
}

// Correlator evaluates correlation rules over the hits of the rules they
// name. Feed it every hit of the Engine (Observe), the event time as it
// advances (Advance), and Flush at the end of the input. Each hit comes
// with the caller's reference to its event (a store eid, a record number),
// handed back with the correlation hits that event completes or closes. A
// Correlator is not safe for concurrent use.
type Correlator struct {
	corrs  []*corrState
	byRule map[*Rule][]corrRef
	silent map[*Rule]bool
	// next is the earliest time some window ends (Advance has work to do
	// only past it).
	next time.Time
	// MaxGroups bounds the open groups of each correlation rule.
	MaxGroups int
	// Dropped counts the hits that could not open a group because of
	// MaxGroups.
	Dropped int
}

type corrRef struct {
	c   *corrState
	idx int // the rule's place in the correlation's list
}

type corrState struct {
	rule    *Rule
	spec    *sigma.Correlation
	refs    []string // each correlated rule as the correlation names it
	atClose bool
	need    int // decided at once: the count that makes the condition hold
	// valueCap bounds the distinct values a value_count group keeps.
	valueCap int
	groups   map[string]*corrGroup
}

type corrGroup struct {
	start, last time.Time
	times       []time.Time          // event_count, sliding
	count       int                  // event_count, at close
	values      map[string]time.Time // value_count: value → last seen
	sums        []timedNumber        // value_sum, sliding: the numbers in the window
	sum         float64              // value_sum and value_avg, at close
	summed      int                  // value_avg, at close: how many numbers
	seen        []time.Time          // temporal: last hit per rule
	chain       []time.Time          // temporal_ordered: start of the latest chain ending at each rule
	techniques  []Technique
	tactics     []Tactic
	event       *telemetry.Event // at close: a copy of the last event
	ref         int64            // and the caller's reference to it
}

// timedNumber is a number of a value_sum window and when it came.
type timedNumber struct {
	at time.Time
	n  float64
}

// Emit receives a correlation hit and the caller's reference to its event.
type Emit func(h Hit, ref int64)

// NewCorrelator prepares the correlation rules among rules (the others are
// the rules they may name, by name or id). A correlation naming an unknown
// rule, or another correlation, is reported and left out.
func NewCorrelator(rules []*Rule) (*Correlator, []error) {
	byName := map[string]*Rule{}
	for _, r := range rules {
		if r.Correlation != nil {
			continue
		}
		if r.ID != "" {
			byName[r.ID] = r
		}
		if r.Name != "" {
			byName[r.Name] = r
		}
	}
	c := &Correlator{byRule: map[*Rule][]corrRef{}, silent: map[*Rule]bool{}, MaxGroups: DefaultMaxGroups}
	generate := map[*Rule]bool{}
	var errs []error
	for _, r := range rules {
		spec := r.Correlation
		if spec == nil {
			continue
		}
		cs := &corrState{rule: r, spec: spec, refs: spec.Rules, groups: map[string]*corrGroup{}}
		var bases []*Rule
		bad := false
		for _, name := range spec.Rules {
			b, ok := byName[name]
			if !ok {
				errs = append(errs, fmt.Errorf("%s:%d: correlation rule %q: rule %q not found (a correlation names detection rules by name or id)", r.Path, spec.Line, r.Title, name))
				bad = true
				continue
			}
			bases = append(bases, b)
		}
		if bad {
			continue
		}
		cs.atClose, cs.need = decideMode(spec)
		cs.valueCap = valueCap(spec)
		c.corrs = append(c.corrs, cs)
		for i, b := range bases {
			c.byRule[b] = append(c.byRule[b], corrRef{c: cs, idx: i})
			generate[b] = generate[b] || spec.Generate
		}
	}
	for b, refs := range c.byRule {
		c.silent[b] = !generate[b]
		// A rule listed twice in one ordered correlation: its later place
		// first, so that one hit does not chain onto itself.
		slices.SortStableFunc(refs, func(x, y corrRef) int { return y.idx - x.idx })
	}
	return c, errs
}

// decideMode tells whether a correlation is decided at window close, and
// otherwise the count that decides it.
func decideMode(spec *sigma.Correlation) (atClose bool, need int) {
	if len(spec.Condition) == 0 { // temporal: every rule
		return false, len(distinct(spec.Rules))
	}
	if spec.Type == sigma.CorrelationValueAvg {
		return true, 0 // an average can fall again: only the whole window decides
	}
	for _, cmp := range spec.Condition {
		switch cmp.Op {
		case "gte":
			need = max(need, int(math.Ceil(cmp.Value)))
		case "gt":
			need = max(need, int(math.Floor(cmp.Value))+1)
		default:
			return true, 0
		}
	}
	return false, max(need, 1)
}

func distinct(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

// Len is the number of correlation rules in use.
func (c *Correlator) Len() int { return len(c.corrs) }

// Reports tells whether a rule's own hits are to be reported: every rule
// but those named only by correlations with generate false (the Sigma
// default).
func (c *Correlator) Reports(r *Rule) bool { return !c.silent[r] }

// Groups is the number of open groups, for measuring state.
func (c *Correlator) Groups() int {
	n := 0
	for _, cs := range c.corrs {
		n += len(cs.groups)
	}
	return n
}

// Observe takes one hit of the Engine and calls emit for each correlation
// it completes. Observe also closes the windows the hit's time has passed
// (as Advance).
func (c *Correlator) Observe(h Hit, ref int64, emit Emit) {
	refs := c.byRule[h.Rule]
	if len(refs) == 0 {
		return
	}
	t := h.Time
	if t.IsZero() && h.Event != nil {
		t = h.Event.Time
	}
	c.Advance(t, emit)
	for _, cr := range refs {
		c.observe(cr, h, ref, t, emit)
	}
}

func (c *Correlator) observe(ref corrRef, h Hit, evRef int64, t time.Time, emit Emit) {
	cs, spec := ref.c, ref.c.spec
	key := cs.groupKey(h.Event, ref.idx)
	g := cs.groups[key]
	if g != nil && cs.atClose && t.Sub(g.start) > spec.Timespan {
		cs.close(key, g, emit)
		g = nil
	}
	if g == nil {
		if len(cs.groups) >= c.MaxGroups {
			c.Dropped++
			return
		}
		g = &corrGroup{start: t}
		cs.groups[key] = g
		if end := t.Add(spec.Timespan); c.next.IsZero() || end.Before(c.next) {
			c.next = end
		}
	}
	if t.After(g.last) {
		g.last = t
	}
	g.techniques = unionTechniques(g.techniques, h.Techniques)
	g.tactics = unionTactics(g.tactics, h.Tactics)
	from := t.Add(-spec.Timespan)
	fired := false
	switch spec.Type {
	case sigma.CorrelationEventCount:
		if cs.atClose {
			g.count++
		} else {
			g.times = append(dropBefore(g.times, from), t)
			fired = len(g.times) >= cs.need
		}
	case sigma.CorrelationValueCount:
		v, ok := cs.fieldValue(h.Event, spec.Field, ref.idx)
		if !ok {
			break
		}
		if g.values == nil {
			g.values = map[string]time.Time{}
		}
		if !cs.atClose {
			maps.DeleteFunc(g.values, func(_ string, at time.Time) bool { return at.Before(from) })
		}
		if _, seen := g.values[v]; seen || len(g.values) < cs.valueCap {
			g.values[strings.Clone(v)] = t
		}
		fired = !cs.atClose && len(g.values) >= cs.need
	case sigma.CorrelationValueSum, sigma.CorrelationValueAvg:
		v, ok := cs.fieldValue(h.Event, spec.Field, ref.idx)
		if !ok {
			break
		}
		n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			break // not a number: does not count
		}
		if cs.atClose {
			g.sum += n
			g.summed++
			break
		}
		g.sums = append(slices.DeleteFunc(g.sums, func(x timedNumber) bool { return x.at.Before(from) }), timedNumber{t, n})
		total := 0.0
		for _, x := range g.sums {
			total += x.n
		}
		fired = cs.holds(total)
	case sigma.CorrelationTemporal:
		if g.seen == nil {
			g.seen = make([]time.Time, len(cs.refs))
		}
		g.seen[ref.idx] = t
		fired = !cs.atClose && cs.distinctSeen(g, from) >= cs.need
	case sigma.CorrelationTemporalOrdered:
		if g.chain == nil {
			g.chain = make([]time.Time, len(cs.refs))
		}
		switch {
		case ref.idx == 0:
			g.chain[0] = t
		case !g.chain[ref.idx-1].IsZero() && !g.chain[ref.idx-1].Before(from):
			if g.chain[ref.idx-1].After(g.chain[ref.idx]) || g.chain[ref.idx].IsZero() {
				g.chain[ref.idx] = g.chain[ref.idx-1]
			}
		}
		last := len(g.chain) - 1
		fired = ref.idx == last && !g.chain[last].IsZero() && !g.chain[last].Before(from)
	}
	if cs.atClose {
		if h.Event != nil {
			g.event, g.ref = h.Event.Clone(), evRef // the caller may reuse its event
		}
		return
	}
	if fired {
		emit(cs.hit(g, h.Event, t), evRef)
		delete(cs.groups, key)
	}
}

// Advance closes the windows that end before now, emitting the hits of
// those decided at close, and drops the state of idle groups.
func (c *Correlator) Advance(now time.Time, emit Emit) {
	if c.next.IsZero() || !now.After(c.next) {
		return
	}
	c.next = time.Time{}
	var over []string
	for _, cs := range c.corrs {
		over = over[:0]
		for key, g := range cs.groups {
			end := g.start.Add(cs.spec.Timespan)
			if !cs.atClose {
				// Sliding windows: a group idle for a timespan holds
				// nothing that can still count.
				end = g.last.Add(cs.spec.Timespan)
			}
			if now.After(end) {
				over = append(over, key)
				continue
			}
			if c.next.IsZero() || end.Before(c.next) {
				c.next = end
			}
		}
		// In key order, so that the same input gives the same hits in
		// the same order.
		slices.Sort(over)
		for _, key := range over {
			if cs.atClose {
				cs.close(key, cs.groups[key], emit)
			} else {
				delete(cs.groups, key)
			}
		}
	}
}

// Flush closes every window (the end of the input): the correlations
// decided at close report what their windows hold.
func (c *Correlator) Flush(emit Emit) {
	for _, cs := range c.corrs {
		keys := slices.Sorted(maps.Keys(cs.groups))
		for _, key := range keys {
			g := cs.groups[key]
			if cs.atClose {
				cs.close(key, g, emit)
			}
			delete(cs.groups, key)
		}
	}
	c.next = time.Time{}
}

// close decides a window of a correlation decided at close.
func (cs *corrState) close(key string, g *corrGroup, emit Emit) {
	delete(cs.groups, key)
	var n float64
	switch cs.spec.Type {
	case sigma.CorrelationEventCount:
		n = float64(g.count)
	case sigma.CorrelationValueCount:
		n = float64(len(g.values))
	case sigma.CorrelationTemporal, sigma.CorrelationTemporalOrdered:
		n = float64(cs.distinctSeen(g, time.Time{}))
	case sigma.CorrelationValueSum:
		n = g.sum
	case sigma.CorrelationValueAvg:
		if g.summed == 0 {
			return
		}
		n = g.sum / float64(g.summed)
	}
	if !cs.holds(n) {
		return
	}
	if g.event == nil {
		return
	}
	emit(cs.hit(g, g.event, g.start.Add(cs.spec.Timespan)), g.ref)
}

// holds reports whether every comparison of the condition holds for n.
func (cs *corrState) holds(n float64) bool {
	for _, cmp := range cs.spec.Condition {
		if !cmp.Holds(n) {
			return false
		}
	}
	return true
}

// distinctSeen counts the rules of a temporal group that hit at or after
// from.
func (cs *corrState) distinctSeen(g *corrGroup, from time.Time) int {
	seen := map[string]bool{}
	for i, at := range g.seen {
		if !at.IsZero() && !at.Before(from) {
			seen[cs.refs[i]] = true
		}
	}
	for i, at := range g.chain {
		if !at.IsZero() {
			seen[cs.refs[i]] = true
		}
	}
	return len(seen)
}

func (cs *corrState) hit(g *corrGroup, ev *telemetry.Event, t time.Time) Hit {
	r := cs.rule
	return Hit{Rule: r, Techniques: unionTechniques(slices.Clone(r.Techniques), g.techniques),
		Tactics: unionTactics(slices.Clone(r.Tactics), g.tactics), Event: ev, Time: t}
}

// groupKey is the group-by values of a hit of the idx-th rule.
func (cs *corrState) groupKey(ev *telemetry.Event, idx int) string {
	if len(cs.spec.GroupBy) == 0 {
		return ""
	}
	var b strings.Builder
	for _, f := range cs.spec.GroupBy {
		v, _ := cs.fieldValue(ev, f, idx)
		b.WriteString(v)
		b.WriteByte(0)
	}
	return b.String()
}

// fieldValue reads a group-by or condition field (or alias) from a hit of
// the idx-th rule.
func (cs *corrState) fieldValue(ev *telemetry.Event, field string, idx int) (string, bool) {
	if ev == nil {
		return "", false
	}
	if per, ok := cs.spec.Aliases[field]; ok {
		f, ok := per[cs.refs[idx]]
		if !ok {
			return "", false
		}
		field = f
	}
	v, ok, _ := lookupField(ev, field, nil)
	return v, ok
}

// dropBefore removes the times before from (times are in hit order, which
// is mostly time order: any older one is dropped).
func dropBefore(times []time.Time, from time.Time) []time.Time {
	return slices.DeleteFunc(times, func(at time.Time) bool { return at.Before(from) })
}

func unionTechniques(a, b []Technique) []Technique {
	for _, t := range b {
		if !slices.ContainsFunc(a, func(x Technique) bool { return x.ID == t.ID }) {
			a = append(a, t)
		}
	}
	return a
}

func unionTactics(a, b []Tactic) []Tactic {
	for _, t := range b {
		if !slices.ContainsFunc(a, func(x Tactic) bool { return x.ShortName == t.ShortName }) {
			a = append(a, t)
		}
	}
	return a
}
