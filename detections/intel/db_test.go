package intel

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

func openDB(t *testing.T) *DB {
	t.Helper()
	d, err := Open(filepath.Join(t.TempDir(), FileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	d.SetClock(func() time.Time { return loadTime })
	return d
}

func storedValues(t *testing.T, d *DB, f IndicatorFilter) []string {
	t.Helper()
	var out []string
	if err := d.ScanIndicators(context.Background(), f, func(in *Indicator) bool {
		out = append(out, string(in.Type)+" "+in.Value)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func TestStoreUpdateRemove(t *testing.T) {
	ctx := context.Background()
	d := openDB(t)
	f := readFile(t, "bundle.json", "", Options{Source: "vendor"})
	if err := d.Store(ctx, f, false); err != nil {
		t.Fatal(err)
	}
	if got := storedValues(t, d, IndicatorFilter{}); !slices.Equal(got, values(f)) {
		t.Fatalf("stored %q, want %q", got, values(f))
	}
	active := storedValues(t, d, IndicatorFilter{ActiveOnly: true})
	if len(active) != len(f.Indicators)-1 || slices.Contains(active, "domain old-c2.example") {
		t.Fatalf("active %q: the expired indicator should be left out", active)
	}
	feeds, err := d.Feeds(ctx)
	if err != nil || len(feeds) != 1 || feeds[0].Count != 8 || feeds[0].Active != 7 || feeds[0].Format != FormatSTIX {
		t.Fatalf("feeds %+v, %v", feeds, err)
	}

	// update: a later, smaller feed replaces the source's indicators;
	// those kept keep their first_seen.
	later := loadTime.Add(24 * time.Hour)
	g, err := Read(strings.NewReader("evil-c2.example\nnew.example\n"), "v2.txt", FormatPlain, Options{Source: "vendor", Now: later})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Store(ctx, g, true); err != nil {
		t.Fatal(err)
	}
	if got := storedValues(t, d, IndicatorFilter{}); !slices.Equal(got, []string{"domain evil-c2.example", "domain new.example"}) {
		t.Fatalf("after update: %q", got)
	}
	d.ScanIndicators(ctx, IndicatorFilter{Values: []string{"evil-c2.example"}}, func(in *Indicator) bool {
		if !in.FirstSeen.Equal(loadTime) || !in.Updated.Equal(later) {
			t.Errorf("updated indicator first_seen %v updated %v, want %v and %v", in.FirstSeen, in.Updated, loadTime, later)
		}
		return true
	})
	feeds, _ = d.Feeds(ctx)
	if !feeds[0].Added.Equal(loadTime) || !feeds[0].Updated.Equal(later) || feeds[0].Count != 2 {
		t.Errorf("feed after update %+v", feeds[0])
	}

	// add merges into a source.
	if err := d.Store(ctx, readFile(t, "list.txt", "", Options{Source: "vendor"}), false); err != nil {
		t.Fatal(err)
	}
	if n := len(storedValues(t, d, IndicatorFilter{Sources: []string{"vendor"}})); n != 10 {
		t.Errorf("after add: %d indicators, want 10", n)
	}
	if n, err := d.Remove(ctx, "vendor"); err != nil || n != 10 {
		t.Fatalf("remove: %d, %v", n, err)
	}
	if _, err := d.Remove(ctx, "vendor"); !errors.Is(err, ErrNoFeed) {
		t.Errorf("removing a missing source: %v", err)
	}
	if got := storedValues(t, d, IndicatorFilter{}); len(got) != 0 {
		t.Errorf("after remove: %q", got)
	}
}

// A load that fails part-way stores nothing.
func TestStoreAllOrNothing(t *testing.T) {
	d := openDB(t)
	f := readFile(t, "list.txt", "", Options{Source: "s"})
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	f.Indicators = slices.Clone(f.Indicators)
	// An indicator whose type the schema accepts but whose write is cut by
	// the cancelled context half-way through the feed.
	big := make([]Indicator, 0, 5000)
	for i := 0; i < 5000; i++ {
		big = append(big, Indicator{Type: Domain, Value: "d" + strings.Repeat("x", i%50) + ".example" + string(rune('a'+i%26)), Source: "s", Ref: "r"})
		n++
	}
	f.Indicators = append(f.Indicators, big...)
	go func() { time.Sleep(time.Millisecond); cancel() }()
	err := d.Store(ctx, f, false)
	if err == nil {
		t.Skip("the load finished before the cancel")
	}
	if got := storedValues(t, d, IndicatorFilter{}); len(got) != 0 {
		t.Fatalf("a failed load left %d indicators", len(got))
	}
	if feeds, _ := d.Feeds(context.Background()); len(feeds) != 0 {
		t.Fatalf("a failed load left feed %+v", feeds)
	}
}

// A hunt finds, in events stored before, an indicator added after them;
// hunting again stores nothing new.
func TestHuntFindsLaterIndicator(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := eventstore.Open(eventstore.Path(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ev := telemetry.NewEvent(telemetry.KindOther, telemetry.SourceSysmon)
	ev.Time, ev.Host, ev.PID, ev.Path = loadTime.Add(-time.Hour), "ws1", 4242, `C:\Windows\System32\svchost.exe`
	ev.Category, ev.EventID = "dns_query", 22
	ev.Fields = telemetry.FieldsFromMap(map[string]string{"QueryName": "beacon.evil-c2.example", "QueryResults": "198.51.100.20;"})
	other := telemetry.NewEvent(telemetry.KindExec, telemetry.SourceSysmon)
	other.Time, other.Host, other.Cmdline = loadTime.Add(-time.Hour), "ws1", "notepad.exe"
	first, err := st.Append(ctx, []telemetry.Event{other, ev})
	if err != nil {
		t.Fatal(err)
	}

	d := openDB(t)
	f := readFile(t, "bundle.json", "", Options{Source: "vendor"})
	kb, err := attack.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	l := NewLinker(kb)
	l.ResolveFeed(f)
	if err := d.Store(ctx, f, false); err != nil {
		t.Fatal(err)
	}
	m, err := d.Matcher(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Hunt(ctx, st, time.Time{}, m, l, d.Now())
	if err != nil {
		t.Fatal(err)
	}
	if res.Events != 2 || res.Hits != 2 || res.New != 2 {
		t.Fatalf("hunt %+v, want 2 events, 2 hits (domain and network)", res)
	}
	var hits []telemetry.IOCSighting
	if err := st.ScanSightings(ctx, eventstore.SightingFilter{}, func(h *telemetry.IOCSighting) bool { hits = append(hits, *h); return true }); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(hits, func(a, b telemetry.IOCSighting) int { return strings.Compare(a.Field, b.Field) })
	h := hits[0]
	if h.Field != "QueryName" || h.Indicator != "evil-c2.example" || h.EID != first+1 || h.PID != 4242 || h.Host != "ws1" ||
		!h.Time.Equal(ev.Time) || !h.DetectedAt.Equal(loadTime) || !slices.Equal(h.Groups, []string{"G0016"}) ||
		!slices.Equal(h.Techniques, []string{"T1059.001"}) {
		t.Fatalf("hit %+v", h)
	}
	if !strings.HasPrefix(h.Context, "linked to G0016 APT29 (uses T") {
		t.Errorf("context %q", h.Context)
	}
	if hits[1].Field != "QueryResults" || hits[1].Indicator != "198.51.100.0/24" {
		t.Errorf("second hit %+v", hits[1])
	}
	res, err = Hunt(ctx, st, time.Time{}, m, l, d.Now())
	if err != nil || res.Hits != 2 || res.New != 0 {
		t.Fatalf("second hunt %+v, %v: want the same hits, none new", res, err)
	}
	// --since after the event: nothing read.
	if res, _ := Hunt(ctx, st, loadTime, m, l, d.Now()); res.Events != 0 {
		t.Errorf("hunt since after the events read %d", res.Events)
	}
}

func TestLinkerResolve(t *testing.T) {
	kb, err := attack.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	l := NewLinker(kb)
	in := Indicator{Groups: []string{"Cozy Bear", "Unknown Crew", "mimikatz"}, Malware: []string{"cobalt strike", "S0154"}, Techniques: []string{"T1059.001"}}
	l.Resolve(&in)
	if !slices.Equal(in.Groups, []string{"G0016", "Unknown Crew"}) || !slices.Equal(in.Malware, []string{"S0002", "S0154"}) {
		t.Fatalf("resolved %+v", in)
	}
	if n := l.Names([]string{"G0016", "Unknown Crew"}); !slices.Equal(n, []string{"G0016 APT29", "Unknown Crew"}) {
		t.Errorf("names %q", n)
	}
	if ts := l.Techniques([]string{"G0016"}, nil); !slices.Contains(ts, "T1059.001") {
		t.Errorf("APT29's techniques %q lack T1059.001", ts)
	}
}

func TestLiveReloadsOnChange(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d, err := Open(Path(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	lv, err := NewLive(ctx, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := telemetry.NewEvent(telemetry.KindOther, telemetry.SourceSysmon)
	ev.Fields.Set("DestinationIp", "203.0.113.7")
	if hits, _ := lv.Match([]telemetry.Event{ev}, []int64{7}); len(hits) != 0 {
		t.Fatalf("before any intel: %v", hits)
	}
	// Another process (quarry intel add) writes the database.
	other, err := Open(Path(dir))
	if err != nil {
		t.Fatal(err)
	}
	g, _ := Read(strings.NewReader("203.0.113.7\n"), "l.txt", FormatPlain, Options{Source: "x"})
	if err := other.Store(ctx, g, false); err != nil {
		t.Fatal(err)
	}
	other.Close()
	if hits, _ := lv.Match([]telemetry.Event{ev}, []int64{7}); len(hits) != 0 {
		t.Fatalf("matched before Refresh: %v", hits)
	}
	if err := lv.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	hits, recs := lv.Match([]telemetry.Event{ev}, []int64{7})
	if len(hits) != 1 || hits[0].EID != 7 || hits[0].Field != "DestinationIp" {
		t.Fatalf("after the add: %+v", hits)
	}
	// The hit's row for the event store is an IoC hit named by its badge,
	// with an id that matching the same event again gives again.
	if len(recs) != 1 || recs[0].Kind() != telemetry.KindIOC || recs[0].RuleTitle != "IOC 203.0.113.7" ||
		recs[0].HitID != hits[0].HitID || recs[0].EID != 7 {
		t.Fatalf("hit rows: %+v", recs)
	}
	again, _ := lv.Match([]telemetry.Event{ev}, []int64{7})
	if len(again) != 1 || again[0].HitID != hits[0].HitID {
		t.Fatalf("matched again: %+v; want hit id %s", again, hits[0].HitID)
	}
}

// The IoC hits an older Quarry kept in the intel database move into the
// event store once, and the old table goes.
func TestMoveSightings(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d, err := Open(Path(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	st, err := eventstore.Open(filepath.Join(dir, "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n, err := d.MoveSightings(ctx, st); err != nil || n != 0 {
		t.Fatalf("nothing to move: %d, %v", n, err)
	}
	if _, err := d.db.Exec(`CREATE TABLE hits (hit_id TEXT PRIMARY KEY, time INTEGER NOT NULL, detected_at INTEGER NOT NULL,
		host TEXT NOT NULL, indicator TEXT NOT NULL, type TEXT NOT NULL, source TEXT NOT NULL, confidence INTEGER NOT NULL,
		field TEXT NOT NULL, value TEXT NOT NULL, eid INTEGER NOT NULL, pid INTEGER NOT NULL, process_key TEXT NOT NULL,
		path TEXT NOT NULL, techniques TEXT NOT NULL, groups_ TEXT NOT NULL, malware TEXT NOT NULL, context TEXT NOT NULL);
		INSERT INTO hits VALUES ('h1', 1700000000000000000, 1700000100000000000, 'ws1', '203.0.113.7', 'ipv4', 'feed', 80,
		'DestinationIp', '203.0.113.7', 12, 4242, 'k', 'C:\x.exe', 'T1071', 'G0016', '', 'linked to G0016 APT29')`); err != nil {
		t.Fatal(err)
	}
	if n, err := d.MoveSightings(ctx, st); err != nil || n != 1 {
		t.Fatalf("moved %d, %v; want 1", n, err)
	}
	var got []telemetry.IOCSighting
	st.ScanSightings(ctx, eventstore.SightingFilter{HitIDs: []string{"h1"}}, func(h *telemetry.IOCSighting) bool {
		got = append(got, *h)
		return true
	})
	if len(got) != 1 || got[0].EID != 12 || got[0].Type != "ipv4" || got[0].Time.Unix() != 1700000000 ||
		!slices.Equal(got[0].Groups, []string{"G0016"}) || got[0].Context != "linked to G0016 APT29" {
		t.Fatalf("moved sighting %+v", got)
	}
	if n, err := d.MoveSightings(ctx, st); err != nil || n != 0 {
		t.Fatalf("moved again: %d, %v", n, err)
	}
}
