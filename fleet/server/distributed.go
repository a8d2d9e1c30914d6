package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"time"

	"github.com/quarry-sec/quarry/fleet/osqwire"
	"github.com/quarry-sec/quarry/fleet/store"
)

// handleDistributedRead hands a host the live hunts it has yet to run:
// {"queries": {hunt ID: SQL}, "quarry_deadlines": {hunt ID: UNIX seconds}}.
// The deadlines are Quarry's addition, for its agent to drop an answer it
// could not deliver in time; osqueryd ignores them. While the server does
// not know the host's tables, the schema probe (SchemaProbeID) comes along.
func (s *Server) handleDistributedRead(w http.ResponseWriter, r *http.Request, h *store.Host, _ []byte) {
	now := s.cfg.Now()
	active, err := s.huntsActive(r, now)
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	probe := s.schemaProbeDue(r.Context(), h, now)
	if !active && !probe {
		// The common case: no hunt anywhere, no write transaction.
		writeJSON(w, http.StatusOK, osqwire.DistributedReadResponse{Queries: map[string]string{}})
		return
	}
	var hunts []store.Hunt
	if active && !s.huntQuiet(h.ID, now) {
		s.activeMu.Lock()
		gen := s.activeGen
		s.activeMu.Unlock()
		watch := s.watching()
		var next time.Time
		hunts, next, err = s.cfg.Store.TakeHunts(r.Context(), h.ID, now, now.Add(-s.cfg.HuntResend))
		if err != nil {
			s.fail(w, r, err, nil)
			return
		}
		s.setHuntQuiet(h.ID, next, now, gen, watch)
	}
	queries := make(map[string]string, len(hunts)+1)
	deadlines := make(map[string]int64, len(hunts)+1)
	for _, hu := range hunts {
		queries[hu.ID] = hu.SQL
		deadlines[hu.ID] = hu.Deadline.Unix()
	}
	if probe {
		queries[SchemaProbeID] = SchemaProbeSQL
		deadlines[SchemaProbeID] = now.Add(s.cfg.SchemaRetry).Unix()
	}
	writeJSON(w, http.StatusOK, osqwire.DistributedReadResponse{Queries: queries, Deadlines: deadlines})
}

// handleDistributedWrite records a host's answers to hunts, and to the
// schema probe (last: hunts first). Answers to unknown or expired hunts, or
// repeated answers, are dropped; the host is told nothing of them (osquery
// would not act on it).
func (s *Server) handleDistributedWrite(w http.ResponseWriter, r *http.Request, h *store.Host, body []byte) {
	var req osqwire.DistributedWriteRequest[json.RawMessage]
	if err := json.Unmarshal(body, &req); err != nil {
		s.fail(w, r, errorf(http.StatusBadRequest, "malformed JSON: %v", err), nil)
		return
	}
	ids := map[string]bool{}
	for id := range req.Queries {
		ids[id] = true
	}
	for id := range req.Statuses {
		ids[id] = true
	}
	now := s.cfg.Now()
	probed := ids[SchemaProbeID]
	delete(ids, SchemaProbeID)
	for id := range ids {
		if !validText(id) {
			continue // no hunt has such an ID
		}
		a := store.Answer{Status: int(req.Statuses[id]), Message: limitString(req.Messages[id], 4096), At: now}
		if a.Status == 0 {
			a.Rows = rowsOf(req.Queries[id])
		} else if a.Message == "" {
			a.Message = "query failed"
		}
		cleanStrings(&a)
		if _, err := s.cfg.Store.AnswerHunt(r.Context(), id, h.ID, a); err != nil {
			s.fail(w, r, err, nil)
			return
		}
	}
	if probed {
		if err := s.recordSchema(r.Context(), h, int(req.Statuses[SchemaProbeID]), limitString(req.Messages[SchemaProbeID], 4096),
			req.Queries[SchemaProbeID], now); err != nil {
			s.fail(w, r, err, nil)
			return
		}
	}
	writeJSON(w, http.StatusOK, osqwire.NodeResponse{})
}

// rowsOf returns the JSON objects of a rows array; anything else (osquery
// sends "" for a failed query) has none.
func rowsOf(raw json.RawMessage) []json.RawMessage {
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '[' {
		return nil
	}
	var rows []json.RawMessage
	if json.Unmarshal(raw, &rows) != nil {
		return nil
	}
	out := rows[:0]
	for _, row := range rows {
		if isObject(row) {
			out = append(out, row)
		}
	}
	return out
}

// activeCheckEvery is how stale this server's "is any hunt active?" answer
// may be: a hunt created on another replica reaches hosts at most this much
// later (one made here resets it at once).
const activeCheckEvery = time.Second

// huntsActive reports whether any hunt's deadline is still ahead, asking
// the store at most once per activeCheckEvery. While one request asks,
// the others take the previous answer instead of queueing behind it (with
// the store busy, every distributed read of the fleet would wait).
func (s *Server) huntsActive(r *http.Request, now time.Time) (bool, error) {
	s.activeMu.Lock()
	fresh := now.Before(s.activeUntil) && !now.Before(s.activeAt)
	// The previous answer also stands while another request asks, unless
	// a hunt was created since that request began.
	if fresh || (s.activeAsking && s.activeKnown && s.askingGen == s.activeGen) {
		active := s.active
		s.activeMu.Unlock()
		return active, nil
	}
	s.activeAsking = true
	gen := s.activeGen
	s.askingGen = gen
	s.activeMu.Unlock()

	n, err := s.cfg.Store.ActiveHunts(r.Context(), now)

	s.activeMu.Lock()
	defer s.activeMu.Unlock()
	s.activeAsking = false
	if err != nil {
		return false, err
	}
	s.active, s.activeKnown = n > 0, true
	if gen == s.activeGen { // no hunt created meanwhile: the answer holds
		s.activeAt, s.activeUntil = now, now.Add(activeCheckEvery)
	} else if n == 0 {
		s.activeUntil = time.Time{} // asked before the new hunt: ask again
	}
	return n > 0, nil
}

// huntCreated makes the next distributed read ask the store again, and
// every host's next read ask for its hunts (see huntQuiet).
func (s *Server) huntCreated() {
	s.activeMu.Lock()
	s.activeUntil = time.Time{}
	s.activeGen++
	s.activeMu.Unlock()
	s.quietMu.Lock()
	s.quiet = nil
	s.quietMu.Unlock()
}
