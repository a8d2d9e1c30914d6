package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/quarry-sec/quarry/fleet/osqwire"
	"github.com/quarry-sec/quarry/fleet/store"
)

// logWriteTimeout bounds the write of one log request.
const logWriteTimeout = 30 * time.Second

// handleLog stores a host's result or status logs, and the detections in
// its results, in one transaction; it answers only after the commit. Items
// that are not JSON objects are skipped (osquery would resend a rejected
// batch forever); a body that is not JSON is rejected. A request sent
// again after its answer was lost stores no result row twice: the store
// de-duplicates rows on osquery's epoch, counter and the row (see
// store.Store.AppendLogs), and detections on their hit. The incidents
// the host no longer has (merged into another, or deleted) are deleted
// from the fleet: see incidentLogs.gone.
func (s *Server) handleLog(w http.ResponseWriter, r *http.Request, h *store.Host, body []byte) {
	var req osqwire.LogRequest
	if err := json.Unmarshal(body, &req); err != nil {
		s.fail(w, r, errorf(http.StatusBadRequest, "malformed JSON: %v", err), nil)
		return
	}
	var b store.LogBatch
	switch req.LogType {
	case osqwire.LogResult:
		known, err := s.allPacks(r.Context())
		if err != nil {
			s.fail(w, r, err, nil)
			return
		}
		var incidents incidentLogs
		for _, item := range req.Data {
			var rl osqwire.ResultLog[json.RawMessage]
			if json.Unmarshal(unwrapString(item), &rl) != nil || rl.Name == "" {
				continue
			}
			s.addResult(&b, &incidents, h, &rl, queryName(rl.Name, known))
		}
		incidents.gone(&b)
	case osqwire.LogStatus:
		for _, item := range req.Data {
			var sl osqwire.StatusLog
			if json.Unmarshal(unwrapString(item), &sl) != nil {
				continue
			}
			b.Statuses = append(b.Statuses, store.StatusLog{Time: unixTime(sl.UnixTime, s.cfg.Now()),
				Severity: int(sl.Severity), Filename: sl.Filename, Line: int(sl.Line), Message: sl.Message, Version: sl.Version})
		}
	default:
		s.fail(w, r, errorf(http.StatusBadRequest, "unknown log_type %q (want result or status)", req.LogType), nil)
		return
	}
	cleanStrings(&b) // a NUL in one field must not cost the host its batch
	// The store group-commits concurrent requests (store.Store.AppendLogs):
	// the write may carry other hosts' logs, so it does not end with this
	// request, only at logWriteTimeout.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), logWriteTimeout)
	err := s.cfg.Store.AppendLogs(ctx, h.ID, &b)
	cancel()
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	s.storeOK()
	writeJSON(w, http.StatusOK, osqwire.NodeResponse{})
}

// addResult adds a result item's rows, and the detections and incidents
// among them, to b; its incident rows are noted in incidents too.
func (s *Server) addResult(b *store.LogBatch, incidents *incidentLogs, h *store.Host, rl *osqwire.ResultLog[json.RawMessage], query string) {
	at := unixTime(rl.UnixTime, s.cfg.Now())
	key := resultLogKey{name: rl.Name, epoch: int64(rl.Epoch), counter: int64(rl.Counter), unixTime: int64(rl.UnixTime)}
	decs := rl.Decorations
	if !isObject(decs) {
		decs = nil
	}
	isHits := isHitsQuery(rl.Name, query)
	add := func(action string, row json.RawMessage) {
		if !isObject(row) {
			return
		}
		b.Results = append(b.Results, store.Result{Name: rl.Name, Query: query, Action: action, Time: at,
			Epoch: int64(rl.Epoch), Counter: int64(rl.Counter), Columns: row, Decorations: decs})
		if isHits && action != "removed" {
			if d, ok := s.detection(h, query, row, at); ok {
				b.Detections = append(b.Detections, d)
			}
		}
		addIncidentRow(b, incidents, key, query, action, row, at)
	}
	switch {
	case rl.DiffResults != nil:
		for _, row := range rl.DiffResults.Added {
			add("added", row)
		}
		for _, row := range rl.DiffResults.Removed {
			add("removed", row)
		}
	case rl.Snapshot != nil:
		for _, row := range rl.Snapshot {
			add("snapshot", row)
		}
	case rl.Columns != nil:
		action := rl.Action
		if action != "removed" && action != "snapshot" {
			action = "added"
		}
		add(action, rl.Columns)
	}
}

// unwrapString returns the JSON inside a JSON string, or item itself.
func unwrapString(item json.RawMessage) json.RawMessage {
	if t := bytes.TrimSpace(item); len(t) > 0 && t[0] == '"' {
		var s string
		if json.Unmarshal(t, &s) == nil {
			return json.RawMessage(s)
		}
	}
	return item
}

func isObject(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) > 1 && t[0] == '{' && json.Valid(t)
}

// unixTime is osquery's unixTime, or now when it is missing.
func unixTime(v osqwire.Int, now time.Time) time.Time {
	if v <= 0 {
		return now
	}
	return time.Unix(int64(v), 0)
}
