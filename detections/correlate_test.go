package detections

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/telemetry"
)

// corrBase are three detection rules for the correlation tests: a.exe,
// b.exe and c.exe started.
const corrBase = `title: A started
id: 11111111-0000-4000-8000-000000000001
name: a_started
logsource: {category: process_creation, product: windows}
detection:
    sel: {Image|endswith: '\a.exe'}
    condition: sel
level: low
tags: [attack.t1059]
---
title: B started
id: 11111111-0000-4000-8000-000000000002
name: b_started
logsource: {category: process_creation, product: windows}
detection:
    sel: {Image|endswith: '\b.exe'}
    condition: sel
level: low
tags: [attack.t1105]
---
title: C started
id: 11111111-0000-4000-8000-000000000003
logsource: {category: process_creation, product: windows}
detection:
    sel: {Image|endswith: '\c.exe'}
    condition: sel
level: low
`

type corrEvent struct {
	at           time.Duration // after t0
	image, user  string
	cmdline      string
	wantNowTitle string // a correlation hit expected right at this event ("" none)
}

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func corrEv(at time.Duration, image, user, cmdline string) *telemetry.Event {
	ev := telemetry.NewEvent(telemetry.KindExec, telemetry.SourceSysmon)
	ev.Channel, ev.EventID, ev.Category = "Microsoft-Windows-Sysmon/Operational", 1, "process_creation"
	ev.Time = t0.Add(at)
	ev.Path, ev.Username, ev.Cmdline = `C:\x\`+image, user, cmdline
	ev.Fields = telemetry.FieldsFromMap(map[string]string{"Image": ev.Path, "User": user, "CommandLine": cmdline})
	return &ev
}

// runCorrelation loads the base rules and one correlation, feeds the
// events in order and returns, per event index, the correlation hits
// emitted while it was processed, then those of Flush (index len(evs)).
func runCorrelation(t *testing.T, corr string, evs []*telemetry.Event, advance ...time.Duration) (map[int][]Hit, *Correlator, []*Hit) {
	t.Helper()
	res, err := LoadBytes("corr.yml", []byte(corrBase+"---\n"+corr), Options{})
	if err != nil || len(res.Errors) > 0 {
		t.Fatalf("load: %v %v", err, res.Errors)
	}
	e := NewEngine(res.Rules)
	c, errs := NewCorrelator(res.Rules)
	if len(errs) > 0 || c.Len() != 1 {
		t.Fatalf("correlator: %v (%d)", errs, c.Len())
	}
	got := map[int][]Hit{}
	var own []*Hit
	for i, ev := range evs {
		emit := func(h Hit, ref int64) {
			if ref != int64(i) && h.Time.Equal(ev.Time) {
				t.Errorf("hit at event %d carries reference %d", i, ref)
			}
			got[i] = append(got[i], h)
		}
		e.Match(ev, func(h Hit) {
			if c.Reports(h.Rule) {
				h := h
				own = append(own, &h)
			}
			c.Observe(h, int64(i), emit)
		})
		c.Advance(ev.Time, emit)
	}
	for _, d := range advance {
		c.Advance(t0.Add(d), func(h Hit, _ int64) { got[-1] = append(got[-1], h) })
	}
	c.Flush(func(h Hit, _ int64) { got[len(evs)] = append(got[len(evs)], h) })
	return got, c, own
}

func hitIndexes(got map[int][]Hit) string {
	var b strings.Builder
	for i := -1; i <= 100; i++ {
		for range got[i] {
			fmt.Fprintf(&b, "%d ", i)
		}
	}
	return strings.TrimSpace(b.String())
}

func TestCorrelationEventCount(t *testing.T) {
	corr := `title: Three A in five minutes per user
id: 22222222-0000-4000-8000-000000000001
level: high
tags: [attack.t1087]
correlation:
    type: event_count
    rules: [a_started]
    group-by: [User]
    timespan: 5m
    condition: {gte: 3}
`
	evs := []*telemetry.Event{
		corrEv(0, "a.exe", "alice", ""),
		corrEv(time.Minute, "a.exe", "bob", ""), // another group
		corrEv(2*time.Minute, "a.exe", "alice", ""),
		corrEv(2*time.Minute, "b.exe", "alice", ""), // another rule
		corrEv(5*time.Minute, "a.exe", "alice", ""), // third alice hit, exactly 5m after the first: inside
		corrEv(6*time.Minute, "a.exe", "alice", ""), // the group started afresh: one
		corrEv(12*time.Minute, "a.exe", "alice", ""),
		corrEv(17*time.Minute+time.Second, "a.exe", "alice", ""), // 5m01s after: the first fell out
		corrEv(18*time.Minute, "a.exe", "alice", ""),             // 12, 17:01, 18 are not within 5m; 17:01, 18 + ...
	}
	got, c, own := runCorrelation(t, corr, evs)
	if s := hitIndexes(got); s != "4" {
		t.Fatalf("hits at events %q, want 4", s)
	}
	h := got[4][0]
	if h.Rule.Source != SourceCorrelation || !h.Time.Equal(evs[4].Time) || h.Event != evs[4] {
		t.Errorf("hit %+v", h)
	}
	ids := map[string]bool{}
	for _, tq := range h.Techniques {
		ids[tq.ID] = true
	}
	if !ids["T1087"] || !ids["T1059"] || ids["T1105"] {
		t.Errorf("techniques %v: want the correlation's and the correlated hits'", h.Techniques)
	}
	// generate is false: a_started's own hits are not reported, b's are.
	for _, o := range own {
		if o.Rule.Name == "a_started" {
			t.Fatalf("a_started reported its own hit although only a correlation with generate false names it")
		}
	}
	if len(own) != 1 {
		t.Errorf("%d own hits reported, want b's one", len(own))
	}
	if c.Groups() != 0 {
		t.Errorf("%d groups left after Flush", c.Groups())
	}
}

func TestCorrelationAtMostDecidedAtClose(t *testing.T) {
	corr := `title: At most two B per user in ten minutes
id: 22222222-0000-4000-8000-000000000002
level: medium
correlation:
    type: event_count
    rules: [b_started]
    group-by: [User]
    timespan: 10m
    condition: {lte: 2}
    generate: true
`
	evs := []*telemetry.Event{
		corrEv(0, "b.exe", "alice", ""),
		corrEv(time.Minute, "b.exe", "bob", ""),
		corrEv(2*time.Minute, "b.exe", "bob", ""),
		corrEv(3*time.Minute, "b.exe", "bob", ""), // bob: three, never reported
		corrEv(9*time.Minute, "b.exe", "alice", ""),
		corrEv(10*time.Minute, "c.exe", "carol", ""),             // alice's window (0..10m) is not over yet
		corrEv(10*time.Minute+time.Second, "c.exe", "carol", ""), // now it is: alice's two are reported here
		corrEv(30*time.Minute, "b.exe", "dave", ""),              // one, open at the end: Flush reports it
	}
	got, _, own := runCorrelation(t, corr, evs)
	if s := hitIndexes(got); s != "6 8" {
		t.Fatalf("hits at events %q, want 6 (alice's window closed) and 8 (Flush: dave)", s)
	}
	a := got[6][0]
	if a.Event.Username != "alice" || !a.Time.Equal(t0.Add(10*time.Minute)) || a.Event == evs[4] {
		t.Errorf("alice's hit: user %q time %v (want the window's end, on a copy of her last event)", a.Event.Username, a.Time)
	}
	if d := got[8][0]; d.Event.Username != "dave" {
		t.Errorf("flushed hit of %q, want dave", d.Event.Username)
	}
	nb := 0
	for _, o := range own {
		if o.Rule.Name == "b_started" {
			nb++
		}
	}
	if nb != 6 {
		t.Errorf("%d own hits of b_started, want 6 (generate: true)", nb)
	}
}

func TestCorrelationValueCount(t *testing.T) {
	corr := `title: Three distinct command lines of A per host
id: 22222222-0000-4000-8000-000000000003
level: high
correlation:
    type: value_count
    rules: [a_started]
    timespan: 1h
    condition: {gte: 3, field: CommandLine}
`
	evs := []*telemetry.Event{
		corrEv(0, "a.exe", "u", "x"),
		corrEv(time.Minute, "a.exe", "u", "x"), // same value
		corrEv(2*time.Minute, "a.exe", "u", "y"),
		corrEv(3*time.Minute, "a.exe", "u", "y"),
		corrEv(4*time.Minute, "a.exe", "u", "z"), // third distinct
		corrEv(5*time.Minute, "a.exe", "u", "w"),
	}
	got, _, _ := runCorrelation(t, corr, evs)
	if s := hitIndexes(got); s != "4" {
		t.Fatalf("hits at %q, want 4", s)
	}
}

func TestCorrelationTemporal(t *testing.T) {
	corr := `title: A and B within a minute
id: 22222222-0000-4000-8000-000000000004
level: high
correlation:
    type: temporal
    rules: [a_started, 11111111-0000-4000-8000-000000000002]
    group-by: [User]
    timespan: 1m
`
	evs := []*telemetry.Event{
		corrEv(0, "b.exe", "u", ""),
		corrEv(time.Minute+time.Second, "a.exe", "u", ""), // 61 s after B: too late
		corrEv(90*time.Second, "b.exe", "v", ""),          // another user
		corrEv(100*time.Second, "b.exe", "u", ""),         // B 39 s after A: any order counts
	}
	got, _, _ := runCorrelation(t, corr, evs)
	if s := hitIndexes(got); s != "3" {
		t.Fatalf("hits at %q, want 3", s)
	}
}

func TestCorrelationTemporalOrdered(t *testing.T) {
	corr := `title: A then B then C within ten minutes
id: 22222222-0000-4000-8000-000000000005
level: critical
correlation:
    type: temporal_ordered
    rules: [a_started, b_started, 11111111-0000-4000-8000-000000000003]
    group-by: [User]
    timespan: 10m
`
	evs := []*telemetry.Event{
		corrEv(0, "b.exe", "u", ""), // B before any A: no chain
		corrEv(time.Minute, "c.exe", "u", ""),
		corrEv(2*time.Minute, "a.exe", "u", ""),
		corrEv(3*time.Minute, "c.exe", "u", ""), // C before B: not yet
		corrEv(4*time.Minute, "b.exe", "u", ""),
		corrEv(5*time.Minute, "c.exe", "v", ""),              // another user
		corrEv(12*time.Minute+time.Second, "c.exe", "u", ""), // 10m01s after A: too late
		corrEv(13*time.Minute, "a.exe", "u", ""),
		corrEv(14*time.Minute, "b.exe", "u", ""),
		corrEv(15*time.Minute, "c.exe", "u", ""), // A 13, B 14, C 15
	}
	got, _, _ := runCorrelation(t, corr, evs)
	if s := hitIndexes(got); s != "9" {
		t.Fatalf("hits at %q, want 9", s)
	}
}

func TestCorrelationBadReferenceAndBoundedState(t *testing.T) {
	res, err := LoadBytes("corr.yml", []byte(corrBase+`---
title: Names a rule that does not exist
correlation:
    type: event_count
    rules: [nope]
    timespan: 5m
    condition: {gte: 2}
---
title: Two A per user
correlation:
    type: event_count
    rules: [a_started]
    group-by: [User]
    timespan: 5m
    condition: {gte: 2}
`), Options{})
	if err != nil || len(res.Errors) > 0 {
		t.Fatal(err, res.Errors)
	}
	c, errs := NewCorrelator(res.Rules)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), `rule "nope" not found`) || c.Len() != 1 {
		t.Fatalf("errors %v, %d correlations", errs, c.Len())
	}
	c.MaxGroups = 100
	e := NewEngine(res.Rules)
	n := 0
	for i := range 1000 {
		e.Match(corrEv(time.Duration(i)*100*time.Millisecond, "a.exe", fmt.Sprintf("user%d", i), ""), func(h Hit) {
			c.Observe(h, int64(i), func(Hit, int64) { n++ })
		})
	}
	if c.Groups() != 100 || c.Dropped != 900 {
		t.Errorf("groups %d dropped %d, want 100 and 900", c.Groups(), c.Dropped)
	}
	c.Advance(t0.Add(time.Hour), func(Hit, int64) { n++ })
	if c.Groups() != 0 || n != 0 {
		t.Errorf("after an hour: %d groups, %d hits", c.Groups(), n)
	}
}

// TestCorrelationValueCountBounded: a value_count group keeps no more
// distinct values than its condition needs, and still decides it.
func TestCorrelationValueCountBounded(t *testing.T) {
	corr := `title: At most three command lines of A per hour
id: 22222222-0000-4000-8000-000000000006
level: medium
correlation:
    type: value_count
    rules: [a_started]
    timespan: 1h
    condition: {lte: 3, field: CommandLine}
    generate: true
`
	var evs []*telemetry.Event
	for i := range 500 {
		evs = append(evs, corrEv(time.Duration(i)*time.Second, "a.exe", "u", fmt.Sprintf("a.exe --n %d", i)))
	}
	got, c, _ := runCorrelation(t, corr, evs)
	if s := hitIndexes(got); s != "" {
		t.Fatalf("hits at %q: 500 distinct values are not at most 3", s)
	}
	for _, cs := range c.corrs {
		if cs.valueCap != 4 {
			t.Errorf("value cap %d, want 4", cs.valueCap)
		}
	}
	got, _, _ = runCorrelation(t, corr, evs[:3])
	if s := hitIndexes(got); s != "3" {
		t.Fatalf("hits at %q, want one at Flush for three values", s)
	}
}

func corrEvBytes(at time.Duration, user, bytes string) *telemetry.Event {
	ev := corrEv(at, "a.exe", user, "")
	ev.Fields.Set("Bytes", bytes)
	return ev
}

// TestCorrelationValueSumAndAvg: value_sum fires once its sliding window's
// numbers reach the condition; value_avg is decided when the window closes;
// values that are not numbers do not count.
func TestCorrelationValueSumAndAvg(t *testing.T) {
	sum := `title: A moved 1000 bytes in ten minutes
id: 22222222-0000-4000-8000-000000000007
level: high
correlation:
    type: value_sum
    rules: [a_started]
    group-by: [User]
    timespan: 10m
    condition: {gte: 1000, field: Bytes}
`
	evs := []*telemetry.Event{
		corrEvBytes(0, "u", "600"),
		corrEvBytes(time.Minute, "u", "lots"),   // not a number
		corrEvBytes(2*time.Minute, "v", "900"),  // another group
		corrEvBytes(11*time.Minute, "u", "300"), // the 600 fell out: 300
		corrEvBytes(12*time.Minute, "u", "700"), // 1000
	}
	got, _, _ := runCorrelation(t, sum, evs)
	if s := hitIndexes(got); s != "4" {
		t.Fatalf("value_sum hits at %q, want 4", s)
	}
	avg := `title: A's average above 500 in ten minutes
id: 22222222-0000-4000-8000-000000000008
level: medium
correlation:
    type: value_avg
    rules: [a_started]
    group-by: [User]
    timespan: 10m
    condition: {gt: 500, field: Bytes}
    generate: true
`
	evs = []*telemetry.Event{
		corrEvBytes(0, "u", "900"), // 900 alone would hold, but the window is not over
		corrEvBytes(time.Minute, "u", "100"),
		corrEvBytes(2*time.Minute, "v", "800"),
		corrEvBytes(3*time.Minute, "v", "400"),
		corrEvBytes(11*time.Minute, "w", "1"), // closes u's window (average 500: no); v's ends at 12m
	}
	got, _, _ = runCorrelation(t, avg, evs)
	if s := hitIndexes(got); s != "5" || got[5][0].Event.Username != "v" {
		t.Fatalf("value_avg hits at %q (want one at Flush, for v: average 600)", s)
	}
}
