package server

import (
	"context"
	"time"

	"github.com/quarry-sec/quarry/fleet/store"
)

// Watch keeps the server's caches in step with the other servers sharing
// its store, until ctx ends: when the store is a store.Watcher (PostgreSQL),
// node keys are cached long and dropped when a host enrolls again anywhere,
// and a host known to have no hunt to take is answered without asking the
// store until a hunt is created anywhere (or one handed out earlier is due
// again). With another store, or while the watch's connection is down, the
// server trusts its caches only briefly (Config.NodeCacheTTL; no hunt
// cache). Watch returns when ctx ends, at once with another store.
func (s *Server) Watch(ctx context.Context) {
	w, ok := s.cfg.Store.(store.Watcher)
	if !ok {
		return
	}
	w.Watch(ctx, s.change)
}

// watchState is whether the server's watch on the store is listening, and
// its epoch, bumped whenever that changes: a cache entry is trusted long
// only if it was read while listening, in the current epoch.
type watchState struct {
	live  bool
	epoch uint64
}

func (s *Server) watching() watchState {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	return s.watch
}

// change applies a change the store reported.
func (s *Server) change(c store.Change) {
	switch c.Kind {
	case store.ChangeHostKey:
		s.nodes.invalidate(c.HostID, c.NodeKeyHash, s.cfg.Now())
	case store.ChangeHunt:
		s.huntCreated()
	case store.ChangesLive, store.ChangesLost:
		// Changes may have been missed: nothing cached is known good.
		s.watchMu.Lock()
		s.watch.live = c.Kind == store.ChangesLive
		s.watch.epoch++
		s.watchMu.Unlock()
		s.nodes.clear()
		s.huntCreated()
	}
}

// nodeTTL is how long a node key looked up while the watch was w may be
// cached, given the watch now.
func (s *Server) nodeTTL(w watchState) time.Duration {
	if now := s.watching(); w.live && now == w {
		return WatchedNodeCacheTTL
	}
	return s.cfg.NodeCacheTTL
}

// takeQuiet is what the server knows of a host with no hunt to take: until
// when, as of which hunt generation (activeGen) and watch epoch.
type takeQuiet struct {
	until time.Time
	gen   uint64
	epoch uint64
}

// takeQuietMax bounds how long a host with no hunt left is answered from
// the hunt cache (a new hunt ends it sooner).
const takeQuietMax = 10 * time.Minute

// huntQuiet reports whether the host is known to have no hunt to take now.
func (s *Server) huntQuiet(hostID string, now time.Time) bool {
	w := s.watching()
	if !w.live {
		return false
	}
	s.activeMu.Lock()
	gen := s.activeGen
	s.activeMu.Unlock()
	s.quietMu.Lock()
	q, ok := s.quiet[hostID]
	s.quietMu.Unlock()
	return ok && q.gen == gen && q.epoch == w.epoch && now.Before(q.until) && !now.Before(q.until.Add(-takeQuietMax))
}

// setHuntQuiet notes that the host has no hunt to take before next (the
// zero time: none left), as TakeHunts answered it after the hunt
// generation gen and watch state w were read.
func (s *Server) setHuntQuiet(hostID string, next, now time.Time, gen uint64, w watchState) {
	if !w.live || s.watching() != w || (!next.IsZero() && !next.After(now)) {
		return
	}
	until := now.Add(takeQuietMax)
	if !next.IsZero() && next.Before(until) {
		until = next
	}
	s.quietMu.Lock()
	defer s.quietMu.Unlock()
	if s.quiet == nil || len(s.quiet) >= s.cfg.NodeCacheSize {
		s.quiet = map[string]takeQuiet{}
	}
	s.quiet[hostID] = takeQuiet{until: until, gen: gen, epoch: w.epoch}
}
