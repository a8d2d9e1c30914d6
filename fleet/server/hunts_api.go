package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/quarry-sec/quarry/fleet/store"
)

// huntRequest is POST /api/v1/hunts: sql, targets ("all",
// {"hosts": [...]} or {"platform": "linux"}; default all) and deadline (an
// RFC 3339 time, a duration such as "10m", or seconds; default 5m).
type huntRequest struct {
	SQL      string          `json:"sql"`
	Targets  json.RawMessage `json:"targets"`
	Deadline json.RawMessage `json:"deadline"`
}

// maxHuntSQL bounds a hunt's SQL.
const maxHuntSQL = 64 << 10

// HuntView is a hunt as GET /api/v1/hunts/{id} shows it.
type HuntView struct {
	store.Hunt
	// Done: every target answered, or the deadline passed.
	Done   bool             `json:"done"`
	Counts map[string]int   `json:"counts"` // hosts per status
	Hosts  []store.HuntHost `json:"hosts"`
	// Rows holds result rows, with their host; RowsTotal counts them all.
	Rows      []HuntRowView `json:"rows"`
	RowsTotal int           `json:"rows_total"`
}

// HuntRowView is one result row of a hunt.
type HuntRowView struct {
	HostID         string          `json:"host_id"`
	HostIdentifier string          `json:"host_identifier"`
	Columns        json.RawMessage `json:"columns"`
}

func (s *Server) handleCreateHunt(w http.ResponseWriter, r *http.Request) {
	var req huntRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		s.fail(w, r, err, nil)
		return
	}
	sql := strings.TrimSpace(req.SQL)
	if sql == "" || len(sql) > maxHuntSQL {
		s.fail(w, r, errorf(http.StatusBadRequest, "sql must be 1..%d bytes", maxHuntSQL), nil)
		return
	}
	if !validText(sql) {
		s.fail(w, r, errorf(http.StatusBadRequest, "sql holds a NUL byte or invalid UTF-8"), nil)
		return
	}
	now := s.cfg.Now()
	deadline, err := parseDeadline(req.Deadline, now)
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	targets, err := parseTargets(req.Targets)
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	hostIDs, err := s.targetHosts(r, targets)
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	h := &store.Hunt{ID: uuid.NewString(), SQL: sql, Targets: targets, Created: now, Deadline: deadline}
	defer s.huntCreated()
	if err := s.cfg.Store.CreateHunt(r.Context(), h, hostIDs); err != nil {
		s.fail(w, r, err, nil)
		return
	}
	view, err := s.huntView(r, h.ID, 0, 0, true)
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	w.Header().Set("Location", "/api/v1/hunts/"+h.ID)
	writeJSON(w, http.StatusCreated, view)
}

func parseDeadline(raw json.RawMessage, now time.Time) (time.Time, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return now.Add(DefaultHuntDeadline), nil
	}
	var d time.Duration
	var sec float64
	var s string
	switch {
	case json.Unmarshal(raw, &sec) == nil:
		d = time.Duration(sec * float64(time.Second))
	case json.Unmarshal(raw, &s) == nil:
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			d = t.Sub(now)
		} else if d, err = time.ParseDuration(s); err != nil {
			return time.Time{}, errorf(http.StatusBadRequest, "bad deadline %q (RFC 3339, a duration such as 10m, or seconds)", s)
		}
	default:
		return time.Time{}, errorf(http.StatusBadRequest, "bad deadline %s", raw)
	}
	if d <= 0 || d > MaxHuntDeadline {
		return time.Time{}, errorf(http.StatusBadRequest, "deadline must be in the future and within %s", MaxHuntDeadline)
	}
	return now.Add(d), nil
}

func parseTargets(raw json.RawMessage) (store.Targets, error) {
	raw = bytes.TrimSpace(raw)
	var all string
	if len(raw) == 0 || string(raw) == "null" || (json.Unmarshal(raw, &all) == nil && all == "all") {
		return store.Targets{All: true}, nil
	}
	var t store.Targets
	if err := json.Unmarshal(raw, &t); err != nil {
		return t, errorf(http.StatusBadRequest, `bad targets (want "all", {"hosts": [...]} or {"platform": "linux"})`)
	}
	t.Platform = strings.ToLower(strings.TrimSpace(t.Platform))
	n := 0
	if t.All {
		n++
	}
	if len(t.Hosts) > 0 {
		n++
	}
	if t.Platform != "" {
		n++
	}
	if n != 1 {
		return t, errorf(http.StatusBadRequest, `targets must be one of "all", {"hosts": [...]} or {"platform": "linux"}`)
	}
	return t, nil
}

// targetHosts resolves targets to host IDs; hosts named but unknown, or no
// host at all, are a 400.
func (s *Server) targetHosts(r *http.Request, t store.Targets) ([]string, error) {
	if len(t.Hosts) > 0 {
		ids, unknown, err := s.resolveHosts(r.Context(), t.Hosts)
		if err != nil {
			return nil, err
		}
		if len(unknown) > 0 {
			return nil, errorf(http.StatusBadRequest, "unknown hosts: %s", strings.Join(unknown, ", "))
		}
		return ids, nil
	}
	hosts, err := s.cfg.Store.Hosts(r.Context())
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, h := range hosts {
		if t.All || t.Platform == h.Family || t.Platform == strings.ToLower(h.Platform) ||
			(t.Platform == "posix" && h.Family != FamilyWindows) {
			ids = append(ids, h.ID)
		}
	}
	if len(ids) == 0 {
		return nil, errorf(http.StatusBadRequest, "no enrolled host matches the targets")
	}
	return ids, nil
}

func (s *Server) handleHunt(w http.ResponseWriter, r *http.Request) {
	limit, offset, err := pageParams(r.URL.Query())
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	if r.URL.Query().Get("limit") == "" {
		limit = 10000
	}
	withHosts := true
	switch r.URL.Query().Get("hosts") {
	case "", "true", "1":
	case "false", "0":
		withHosts = false
	default:
		s.fail(w, r, errorf(http.StatusBadRequest, "hosts=%q: want true or false", r.URL.Query().Get("hosts")), nil)
		return
	}
	view, err := s.huntView(r, r.PathValue("id"), limit, offset, withHosts)
	if errors.Is(err, store.ErrNotFound) {
		s.fail(w, r, errorf(http.StatusNotFound, "no hunt %q", r.PathValue("id")), nil)
		return
	}
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	writeJSON(w, http.StatusOK, view)
}

// huntView assembles a hunt's state; a target still pending after the
// deadline is expired. limit 0 leaves the rows out. Without hosts, the
// per-host list is left out (counts come from one aggregate query: a
// client polling a hunt across thousands of hosts for its progress) and
// rows carry their host ID only.
func (s *Server) huntView(r *http.Request, id string, limit, offset int, withHosts bool) (*HuntView, error) {
	h, err := s.cfg.Store.Hunt(r.Context(), id)
	if err != nil {
		return nil, err
	}
	if !withHosts {
		return s.huntSummary(r, h, limit, offset)
	}
	hosts, err := s.cfg.Store.HuntHosts(r.Context(), id)
	if err != nil {
		return nil, err
	}
	v := &HuntView{Hunt: *h, Hosts: hosts, Rows: []HuntRowView{},
		Counts: map[string]int{store.HuntAnswered: 0, store.HuntError: 0, store.HuntPending: 0, store.HuntExpired: 0}}
	expired := !s.cfg.Now().Before(h.Deadline)
	idents := map[string]string{}
	v.Done = true
	for i := range v.Hosts {
		hh := &v.Hosts[i]
		idents[hh.HostID] = hh.HostIdentifier
		if hh.Status == store.HuntPending {
			if expired {
				hh.Status = store.HuntExpired
			} else {
				v.Done = false
			}
		}
		v.Counts[hh.Status]++
		v.RowsTotal += hh.Rows
	}
	if limit > 0 {
		rows, err := s.cfg.Store.HuntRows(r.Context(), id, limit, offset)
		if err != nil {
			return nil, err
		}
		for _, row := range rows {
			v.Rows = append(v.Rows, HuntRowView{HostID: row.HostID, HostIdentifier: idents[row.HostID], Columns: row.Columns})
		}
	}
	return v, nil
}

// huntSummary is huntView without the per-host list.
func (s *Server) huntSummary(r *http.Request, h *store.Hunt, limit, offset int) (*HuntView, error) {
	counts, rowsTotal, err := s.cfg.Store.HuntCounts(r.Context(), h.ID)
	if err != nil {
		return nil, err
	}
	v := &HuntView{Hunt: *h, Hosts: []store.HuntHost{}, Rows: []HuntRowView{}, RowsTotal: rowsTotal,
		Counts: map[string]int{store.HuntAnswered: counts[store.HuntAnswered], store.HuntError: counts[store.HuntError],
			store.HuntPending: counts[store.HuntPending], store.HuntExpired: 0}}
	if !s.cfg.Now().Before(h.Deadline) {
		v.Counts[store.HuntExpired], v.Counts[store.HuntPending] = counts[store.HuntPending], 0
	}
	v.Done = v.Counts[store.HuntPending] == 0
	if limit > 0 {
		rows, err := s.cfg.Store.HuntRows(r.Context(), h.ID, limit, offset)
		if err != nil {
			return nil, err
		}
		for _, row := range rows {
			v.Rows = append(v.Rows, HuntRowView{HostID: row.HostID, Columns: row.Columns})
		}
	}
	return v, nil
}
