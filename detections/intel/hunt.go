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
// stores the sightings in st with their hit rows (Linker.Records), where
// incidents are regrouped around them; what was stored before is not
// stored twice.
func Hunt(ctx context.Context, st *eventstore.Store, since time.Time, m *Matcher, l *Linker, now time.Time) (HuntResult, error) {
	var res HuntResult
	var pending []telemetry.IOCSighting
	var recs []telemetry.Hit
	var ms []Match
	var werr error
	flush := func() {
		n, err := st.SaveSightings(ctx, pending, recs)
		res.New += int64(n)
		pending, recs = pending[:0], recs[:0]
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
		hs := NewSightings(&ev.Event, ev.EID, ms, l, now)
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

// Live matches events as they are stored: the pipeline calls Refresh
// before each batch and Match inside its transaction. It rebuilds its
// matcher when another process changed the intel database (quarry intel
// add/update/remove) and on Reload.
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

// Refresh rebuilds the matcher when the intel database changed since it
// was built.
func (lv *Live) Refresh(ctx context.Context) error {
	v, err := lv.db.dataVersion(ctx)
	if err != nil {
		return err
	}
	lv.mu.Lock()
	same := v == lv.version
	lv.mu.Unlock()
	if same {
		return nil
	}
	return lv.Reload(ctx)
}

// Match matches a batch of events (eids[i] is events[i]'s eid, 0 when not
// stored) and returns their sightings and the sightings' hit rows
// (Linker.Records), for the caller to store with the batch. It keeps no
// state: a retried batch matches the same again.
func (lv *Live) Match(events []telemetry.Event, eids []int64) ([]telemetry.IOCSighting, []telemetry.Hit) {
	lv.mu.Lock()
	defer lv.mu.Unlock()
	var ss []telemetry.IOCSighting
	var recs []telemetry.Hit
	now := lv.db.now()
	for i := range events {
		lv.ms = lv.m.Match(&events[i], lv.ms[:0])
		if len(lv.ms) == 0 {
			continue
		}
		var eid int64
		if i < len(eids) {
			eid = eids[i]
		}
		hs := NewSightings(&events[i], eid, lv.ms, lv.linker, now)
		for j := range hs {
			recs = append(recs, lv.linker.Records(&hs[j], &events[i])...)
		}
		ss = append(ss, hs...)
	}
	return ss, recs
}

// dataVersion changes when another connection commits to the database.
func (d *DB) dataVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := d.db.QueryRowContext(ctx, "PRAGMA data_version").Scan(&v); err != nil {
		return 0, fmt.Errorf("intel database version: %w", err)
	}
	return v, nil
}
