package intel

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

// HuntResult says what a retrospective hunt did.
type HuntResult struct {
	Events int64 // events read
	Hits   int64 // matches found
	New    int64 // hits not already stored
}

// Hunt matches the events stored since since (zero: all) against m and
// stores the hits in d, and as IoC hit rows in st (Linker.Records), where
// incidents are regrouped around them; hits already stored are not stored
// twice.
func Hunt(ctx context.Context, st *eventstore.Store, since time.Time, m *Matcher, l *Linker, d *DB) (HuntResult, error) {
	var res HuntResult
	var pending []Hit
	var recs []telemetry.Hit
	var ms []Match
	var werr error
	now := d.now()
	flush := func() {
		n, err := d.AppendHits(ctx, pending)
		res.New += n
		pending = pending[:0]
		if err == nil {
			err = st.AppendHits(ctx, recs)
		}
		recs = recs[:0]
		if err != nil && werr == nil {
			werr = err
		}
	}
	err := st.Scan(ctx, eventstore.Filter{Since: since}, func(ev *eventstore.StoredEvent) bool {
		res.Events++
		ms = m.Match(&ev.Event, ms[:0])
		if len(ms) == 0 {
			return true
		}
		res.Hits += int64(len(ms))
		hs := NewHits(&ev.Event, ev.EID, ms, l, now)
		for i := range hs {
			recs = append(recs, l.Records(&hs[i], &ev.Event)...)
		}
		pending = append(pending, hs...)
		if len(pending) >= 1000 {
			flush()
		}
		return werr == nil && ctx.Err() == nil
	})
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return res, fmt.Errorf("intel hunt: %w", err)
	}
	flush()
	if werr != nil {
		return res, fmt.Errorf("intel hunt: %w", werr)
	}
	return res, nil
}

// Live matches events as they are stored: the pipeline calls Observe with
// each stored batch. It rebuilds its matcher when another process changed
// the intel database (quarry intel add/update/remove) and on Reload.
type Live struct {
	db     *DB
	linker *Linker

	mu      sync.Mutex
	m       *Matcher
	version int64
	ms      []Match
}

// NewLive returns a Live matcher over d's active indicators.
func NewLive(ctx context.Context, d *DB, l *Linker) (*Live, error) {
	lv := &Live{db: d, linker: l}
	if err := lv.Reload(ctx); err != nil {
		return nil, err
	}
	return lv, nil
}

// DB returns the intel database the matcher reads.
func (lv *Live) DB() *DB { return lv.db }

// Reload rebuilds the matcher from the database.
func (lv *Live) Reload(ctx context.Context) error {
	v, err := lv.db.dataVersion(ctx)
	if err != nil {
		return err
	}
	m, err := lv.db.Matcher(ctx)
	if err != nil {
		return err
	}
	lv.mu.Lock()
	lv.m, lv.version = m, v
	lv.mu.Unlock()
	return nil
}

// Observe matches a batch of stored events (eids[i] is events[i]'s eid, 0
// when not stored) and stores their hits; it returns the hits and their
// rows for the event store's hits (Linker.Records), which the caller stores
// there.
func (lv *Live) Observe(ctx context.Context, events []telemetry.Event, eids []int64) ([]Hit, []telemetry.Hit, error) {
	if v, err := lv.db.dataVersion(ctx); err == nil && v != lv.version {
		if err := lv.Reload(ctx); err != nil {
			return nil, nil, err
		}
	}
	lv.mu.Lock()
	m := lv.m
	var hits []Hit
	var recs []telemetry.Hit
	now := lv.db.now()
	for i := range events {
		lv.ms = m.Match(&events[i], lv.ms[:0])
		if len(lv.ms) > 0 {
			var eid int64
			if i < len(eids) {
				eid = eids[i]
			}
			hs := NewHits(&events[i], eid, lv.ms, lv.linker, now)
			for j := range hs {
				recs = append(recs, lv.linker.Records(&hs[j], &events[i])...)
			}
			hits = append(hits, hs...)
		}
	}
	lv.mu.Unlock()
	if _, err := lv.db.AppendHits(ctx, hits); err != nil {
		return hits, recs, err
	}
	return hits, recs, nil
}

// dataVersion changes when another connection commits to the database.
func (d *DB) dataVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := d.db.QueryRowContext(ctx, "PRAGMA data_version").Scan(&v); err != nil {
		return 0, fmt.Errorf("intel database version: %w", err)
	}
	return v, nil
}
