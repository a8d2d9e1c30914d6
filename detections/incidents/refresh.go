package incidents

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

// LoadHits reads the hits of host in [lo, hi] (both inclusive) from st, one
// Hit per hit_id.
func LoadHits(ctx context.Context, st *eventstore.Store, host string, lo, hi time.Time) ([]Hit, error) {
	var join hitJoin
	err := st.ScanHitHeads(ctx, host, lo, hi, func(r *telemetry.Hit) bool {
		join.add(r)
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("incidents: %w", err)
	}
	return join.hits(), nil
}

// HitsByID reads the hits ids (ioa_hits.hit_id) from st, one Hit per
// hit_id found, in the order their first technique rows come.
func HitsByID(ctx context.Context, st *eventstore.Store, ids []string) ([]Hit, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var join hitJoin
	if err := st.ScanHitsByID(ctx, ids, func(r *telemetry.Hit) bool {
		join.add(r)
		return true
	}); err != nil {
		return nil, fmt.Errorf("incidents: %w", err)
	}
	return join.hits(), nil
}

func appendUnique(s []string, v string) []string {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}

// Stats says what a refresh did.
type Stats struct {
	// Hits is how many hits were (re)grouped; Removed and Stored count the
	// incidents replaced and written.
	Hits, Removed, Stored int
}

// Refresh regroups the hits of host around [lo, hi] (where new hits
// arrived) and replaces the stored incidents they touch, in one
// transaction. The span regrouped is widened by the window on both sides and
// then to cover every stored incident overlapping it, so each incident is
// regrouped whole and the result is what grouping all of the host's hits
// would give.
func Refresh(ctx context.Context, st *eventstore.Store, host string, lo, hi time.Time, opts Options) (Stats, error) {
	opts = opts.withDefaults()
	rlo, rhi := lo.Add(-opts.Window), hi.Add(opts.Window)
	var old []eventstore.IncidentSpan
	for range 1000 {
		spans, err := st.IncidentsOverlapping(ctx, host, rlo, rhi)
		if err != nil {
			return Stats{}, fmt.Errorf("incidents: %w", err)
		}
		old = spans
		grown := false
		for _, sp := range spans {
			if sp.FirstSeen.Before(rlo) {
				rlo, grown = sp.FirstSeen, true
			}
			if sp.LastSeen.After(rhi) {
				rhi, grown = sp.LastSeen, true
			}
		}
		if !grown {
			break
		}
	}
	hits, err := LoadHits(ctx, st, host, rlo, rhi)
	if err != nil {
		return Stats{}, err
	}
	recs, err := NewGrouper(st, opts).Group(ctx, hits)
	if err != nil {
		return Stats{}, err
	}
	remove := make([]string, len(old))
	for i, sp := range old {
		remove[i] = sp.IncidentID
	}
	if err := st.ReplaceIncidents(ctx, remove, recs); err != nil {
		return Stats{}, fmt.Errorf("incidents: %w", err)
	}
	return Stats{Hits: len(hits), Removed: len(remove), Stored: len(recs)}, nil
}

// RefreshHits refreshes the incidents of every host among recs, around the
// times of its hits (what arrived in one batch).
func RefreshHits(ctx context.Context, st *eventstore.Store, recs []telemetry.Hit, opts Options) (Stats, error) {
	type span struct{ lo, hi time.Time }
	spans := map[string]*span{}
	for i := range recs {
		r := &recs[i]
		s, ok := spans[r.Host]
		if !ok {
			spans[r.Host] = &span{r.Time, r.Time}
			continue
		}
		if r.Time.Before(s.lo) {
			s.lo = r.Time
		}
		if r.Time.After(s.hi) {
			s.hi = r.Time
		}
	}
	hosts := make([]string, 0, len(spans))
	for h := range spans {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	var total Stats
	for _, h := range hosts {
		s, err := Refresh(ctx, st, h, spans[h].lo, spans[h].hi, opts)
		if err != nil {
			return total, err
		}
		total.Hits += s.Hits
		total.Removed += s.Removed
		total.Stored += s.Stored
	}
	return total, nil
}

// Rebuild regroups every stored hit of every host (after a change of
// options, or on a store whose hits predate incidents).
func Rebuild(ctx context.Context, st *eventstore.Store, opts Options) (Stats, error) {
	hosts, err := st.HitHosts(ctx)
	if err != nil {
		return Stats{}, fmt.Errorf("incidents: %w", err)
	}
	var total Stats
	lo, hi := time.Unix(0, 1), time.Unix(1<<32, 0) // 1970 to 2106, within UnixNano
	for _, h := range hosts {
		s, err := Refresh(ctx, st, h, lo, hi, opts)
		if err != nil {
			return total, err
		}
		total.Hits += s.Hits
		total.Removed += s.Removed
		total.Stored += s.Stored
	}
	return total, nil
}

// RefreshPending regroups the incidents where hits landed since the last
// refresh (eventstore.PendingIncidents: marked in the hits' own transaction, so a
// refresh a crash cut short is caught up here) and clears those marks.
func RefreshPending(ctx context.Context, st *eventstore.Store, opts Options) (Stats, error) {
	pend, err := st.PendingIncidents(ctx)
	if err != nil || len(pend) == 0 {
		return Stats{}, err
	}
	var recs []telemetry.Hit
	for _, p := range pend {
		recs = append(recs, telemetry.Hit{Host: p.Host, Time: p.Lo}, telemetry.Hit{Host: p.Host, Time: p.Hi})
	}
	s, err := RefreshHits(ctx, st, recs, opts)
	if err != nil {
		return s, err
	}
	if err := st.ClearPendingIncidents(ctx, pend[len(pend)-1].ID); err != nil {
		return s, fmt.Errorf("incidents: %w", err)
	}
	return s, nil
}
