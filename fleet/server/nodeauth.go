package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/quarry-sec/quarry/fleet/osqwire"
	"github.com/quarry-sec/quarry/fleet/store"
)

// nodeHandler handles an osquery request of an enrolled host; body is the
// request body, already read.
type nodeHandler func(w http.ResponseWriter, r *http.Request, h *store.Host, body []byte)

// node authenticates an osquery request by its node key (the
// Authorization: NodeKey header, else the body's node_key). An unknown key
// is answered 401 with node_invalid, which makes osquery enroll again. A
// key is looked up through the node cache: a key replaced through another
// replica keeps working here for up to Config.NodeCacheTTL.
func (s *Server) node(next nodeHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, release, err := readBodyIn(w, r, s.cfg.MaxBodyBytes, s.bodies)
		defer release()
		if err != nil {
			s.fail(w, r, err, nil)
			return
		}
		key, _ := authParam(r, "NodeKey")
		if key == "" {
			var req osqwire.NodeRequest
			if err := json.Unmarshal(body, &req); err != nil {
				s.fail(w, r, errorf(http.StatusBadRequest, "malformed JSON: %v", err), nil)
				return
			}
			key = req.NodeKey
		}
		if key == "" || !validText(key) {
			s.fail(w, r, errorf(http.StatusUnauthorized, "missing node key"), map[string]any{"node_invalid": true})
			return
		}
		h, err := s.hostByNodeKey(r, key)
		if errors.Is(err, store.ErrNotFound) {
			s.fail(w, r, errorf(http.StatusUnauthorized, "invalid node key"), map[string]any{"node_invalid": true})
			return
		}
		if err != nil {
			s.fail(w, r, err, nil)
			return
		}
		s.touch(h.ID)
		next(w, r, h, body)
	}
}

// hostByNodeKey returns the host enrolled under key, from the node cache
// when it holds the key (see nodeCache for how stale that may be).
func (s *Server) hostByNodeKey(r *http.Request, key string) (*store.Host, error) {
	now := s.cfg.Now()
	if h, ok := s.nodes.get(key, now); ok {
		return h, nil
	}
	watch := s.watching()
	h, err := s.cfg.Store.HostByNodeKey(r.Context(), key)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	s.storeOK()
	if err != nil {
		return nil, err
	}
	if done := s.cfg.Now(); done.Sub(now) < replacedKeep {
		s.nodes.putFor(key, h, now, s.nodeTTL(watch))
	}
	return h, nil
}

// touch records that a host was seen. Last-seen times are written at most
// every few seconds per host and server, and then in one transaction for
// every host seen since the last write, at most once a second (10,000 hosts
// checking in must not mean thousands of single-row writes a second).
//
// The write runs on a context of its own (not the request's: a client
// hanging up must not lose other hosts' times); when it fails the times
// go back to the queue, for the next write, unless newer ones came, and
// the failure goes to Config.OnBackgroundError (once per outage when the
// database is unavailable).
func (s *Server) touch(hostID string) {
	now := s.cfg.Now()
	s.touchMu.Lock()
	last, ok := s.touched[hostID]
	if !ok || now.Sub(last) >= s.touchEvery() || now.Before(last) {
		s.touched[hostID] = now
		s.pendingTouch[hostID] = now
	}
	var batch map[string]time.Time
	if len(s.pendingTouch) > 0 && (now.Sub(s.lastTouchFlush) >= touchFlushEvery || now.Before(s.lastTouchFlush)) {
		batch, s.pendingTouch = s.pendingTouch, map[string]time.Time{}
		s.lastTouchFlush = now
	}
	s.touchMu.Unlock()
	if batch == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), touchTimeout)
	err := s.cfg.Store.TouchHosts(ctx, batch)
	cancel()
	if err == nil {
		s.storeOK()
		return
	}
	s.touchMu.Lock()
	for id, t := range batch {
		if p, ok := s.pendingTouch[id]; !ok || p.Before(t) {
			s.pendingTouch[id] = t
		}
	}
	s.touchMu.Unlock()
	if !store.Unavailable(err) {
		s.cfg.OnBackgroundError(fmt.Errorf("write last-seen times of %d hosts: %w", len(batch), err))
	} else if s.outage() {
		s.cfg.OnBackgroundError(fmt.Errorf("write last-seen times of %d hosts: database unavailable: %w", len(batch), err))
	}
}

// seenAt records that the host's last-seen time t is in the store already
// (its enrollment wrote it): its next request writes none before
// touchEvery. Else the config request that follows every enrollment wrote
// the time again: 10,000 hosts enrolling meant 10,000 more row updates
// on the writer while they enrolled.
func (s *Server) seenAt(hostID string, t time.Time) {
	s.touchMu.Lock()
	if last, ok := s.touched[hostID]; !ok || last.Before(t) {
		s.touched[hostID] = t
	}
	s.touchMu.Unlock()
}

// touchTimeout bounds one write of last-seen times.
const touchTimeout = 10 * time.Second

// touchFlushEvery is how often pending last-seen times are written.
const touchFlushEvery = time.Second

// touchEvery is how often a host's last-seen time is written: a quarter
// of the online window (15 s at the default 60 s), so the stored time of
// a host checking in (at least every third of the window) is never older
// than the window and the online flag stays right. It was at most 5 s:
// every host checking in every 10 s was written at each check-in, and
// those updates were the costliest statement on PostgreSQL at 10,000
// hosts (4.4 of 12 s of statement time in a minute, pg_stat_statements).
func (s *Server) touchEvery() time.Duration {
	return s.onlineWindow() / 4
}

// newNodeKey returns a random node key (256 bits).
func newNodeKey() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
