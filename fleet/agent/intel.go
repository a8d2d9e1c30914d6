package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/quarry-sec/quarry/detections/intel"
	"github.com/quarry-sec/quarry/fleet/osqwire"
)

// FleetOrigin prefixes the origin of the feeds the agent keeps for the
// fleet's sets in its intel database ("fleet:" and the set's version): the
// feeds it may replace and remove. Feeds added locally (quarry intel add)
// are left alone.
const FleetOrigin = "fleet:"

// maxIntelRounds bounds the requests of one sync (a response carries part
// of the sets when they are large).
const maxIntelRounds = 16

// syncIntel brings the intel database up to the fleet's sets: each set the
// agent lacks or holds at another version is loaded (replacing its
// indicators; a set that does not read leaves the source as it was), and
// the fleet's sets no longer listed are removed. The live matcher of the
// data directory reloads when the database changes. It returns how many
// sources changed.
func (a *Agent) syncIntel(ctx context.Context) (int, error) {
	db := a.cfg.Intel
	if db == nil {
		return 0, nil
	}
	changed := 0
	var errs []error
	for range maxIntelRounds {
		feeds, err := db.Feeds(ctx)
		if err != nil {
			return changed, fmt.Errorf("intel: %w", err)
		}
		have := map[string]string{}
		for _, f := range feeds {
			if v, ok := strings.CutPrefix(f.Origin, FleetOrigin); ok {
				have[f.Source] = v
			}
		}
		var resp osqwire.IntelResponse
		err = a.call(ctx, osqwire.PathIntel, func(k string) any { return osqwire.IntelRequest{NodeKey: k, Have: have} }, &resp)
		var se *StatusError
		if errors.As(err, &se) && se.Code == http.StatusNotFound {
			return changed, nil // a server that distributes no intel
		}
		if err != nil {
			return changed, fmt.Errorf("intel: %w", err)
		}
		for _, set := range resp.Sets {
			if err := a.loadIntelSet(ctx, set); err != nil {
				errs = append(errs, err)
				continue
			}
			changed++
		}
		for src := range have {
			if _, ok := resp.Current[src]; ok {
				continue
			}
			if _, err := db.Remove(ctx, src); err != nil && !errors.Is(err, intel.ErrNoFeed) {
				errs = append(errs, fmt.Errorf("intel: remove %s: %w", src, err))
				continue
			}
			changed++
		}
		if !resp.More || len(resp.Sets) == 0 {
			break
		}
	}
	return changed, errors.Join(errs...)
}

// loadIntelSet reads one set as its feed and stores it in place of the
// source's indicators.
func (a *Agent) loadIntelSet(ctx context.Context, set osqwire.IntelSet) error {
	opts := intel.Options{Source: set.Source, Confidence: set.Confidence}
	if set.TTLSeconds > 0 {
		opts.TTL = time.Duration(set.TTLSeconds) * time.Second
	}
	feed, err := intel.Read(bytes.NewReader(set.Data), "fleet intel set "+set.Source, intel.Format(set.Format), opts)
	if err != nil {
		return fmt.Errorf("intel: %w", err)
	}
	feed.Origin = FleetOrigin + set.Version
	if a.cfg.IntelLinker != nil {
		a.cfg.IntelLinker.ResolveFeed(feed)
	}
	if err := a.cfg.Intel.Store(ctx, feed, true); err != nil {
		return fmt.Errorf("intel: %w", err)
	}
	return nil
}
