package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/quarry-sec/quarry/fleet/store"
)

// IncidentDetail is the answer of GET /api/v1/incidents/{id}: the
// incident, its hits with the detections the host reported for each, and
// its process tree.
type IncidentDetail struct {
	store.Incident
	Hits []store.IncidentHit  `json:"hits"`
	Tree []store.IncidentNode `json:"tree"`
}

// noHost is a host ID no host has (PostgreSQL refuses NUL in text): a
// filter on it matches nothing.
const noHost = "-no-such-host-"

// incidentFilter reads host, since, until, min_score, limit and offset.
func (s *Server) incidentFilter(ctx context.Context, q url.Values) (store.IncidentFilter, error) {
	var f store.IncidentFilter
	var err error
	if f.Since, f.Until, err = s.timeRange(q); err != nil {
		return f, err
	}
	if f.By, err = timeField(q); err != nil {
		return f, err
	}
	if v := q.Get("min_score"); v != "" {
		if f.MinScore, err = strconv.ParseFloat(v, 64); err != nil || f.MinScore < 0 {
			return f, errorf(http.StatusBadRequest, "bad min_score %q (a number, 0 or more)", v)
		}
	}
	if f.HostIDs, err = s.hostFilter(ctx, q); err != nil {
		return f, err
	}
	if f.Limit, f.Offset, err = pageParams(q); err != nil {
		return f, err
	}
	return f, nil
}

// LoadIncident returns an incident with its hits and tree. key is the
// fleet's ID of the incident or the host's incident ID (a UUID); an
// incident ID several hosts reported gives the highest-scored, unless
// hostIDs narrows it. A missing incident is store.ErrNotFound.
func LoadIncident(ctx context.Context, st store.Store, key string, hostIDs []string) (*IncidentDetail, error) {
	var in *store.Incident
	if id, err := strconv.ParseInt(key, 10, 64); err == nil {
		if in, err = st.IncidentByID(ctx, id); err != nil {
			return nil, err
		}
	} else {
		ins, _, err := st.Incidents(ctx, store.IncidentFilter{IncidentIDs: []string{strings.TrimSpace(key)},
			HostIDs: hostIDs, Limit: 1})
		if err != nil {
			return nil, err
		}
		if len(ins) == 0 {
			return nil, fmt.Errorf("incident %q: %w", key, store.ErrNotFound)
		}
		in = &ins[0]
	}
	hits, err := st.IncidentHits(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	tree, err := st.IncidentTree(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	return &IncidentDetail{Incident: *in, Hits: hits, Tree: tree}, nil
}

func (s *Server) handleIncident(w http.ResponseWriter, r *http.Request) {
	hostIDs, err := s.hostFilter(r.Context(), r.URL.Query())
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	d, err := LoadIncident(r.Context(), s.cfg.Store, r.PathValue("id"), hostIDs)
	if errors.Is(err, store.ErrNotFound) {
		s.fail(w, r, errorf(http.StatusNotFound, "no incident %q", r.PathValue("id")), nil)
		return
	}
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	writeJSON(w, http.StatusOK, d)
}
