package server

import (
	"errors"
	"net/http"

	"github.com/quarry-sec/quarry/detections/packs"
	"github.com/quarry-sec/quarry/fleet/store"
)

// handleQueryResults answers a scheduled query's stored rows, newest
// first: {"total": N, "results": [...]}. The name is the query's name in
// its pack (quarry_ioa_hits) or the name osquery logs
// (pack_quarry-detections_quarry_ioa_hits, or with osquery's other
// pack_delimiter pack/quarry-detections/quarry_ioa_hits, given with the
// slashes escaped as %2F): either form finds rows logged under both.
func (s *Server) handleQueryResults(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.ResultFilter{Query: r.PathValue("name")}
	known, err := s.allPacks(r.Context())
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	f.Names = nameForms(f.Query, known)
	if f.Since, f.Until, err = s.timeRange(q); err != nil {
		s.fail(w, r, err, nil)
		return
	}
	if f.Limit, f.Offset, err = pageParams(q); err != nil {
		s.fail(w, r, err, nil)
		return
	}
	if host := q.Get("host"); host != "" {
		ids, _, err := s.resolveHosts(r.Context(), []string{host})
		if err != nil {
			s.fail(w, r, err, nil)
			return
		}
		if len(ids) == 0 {
			writeJSON(w, http.StatusOK, map[string]any{"total": 0, "results": []store.Result{}})
			return
		}
		f.HostID = ids[0]
	}
	rs, total, err := s.cfg.Store.Results(r.Context(), f)
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"total": total, "results": rs})
}

// handlePacks answers every pack the config serves, by name, with where
// it comes from: {"packs": {name: {"source": "builtin|file|api", "pack": {...}}}}.
func (s *Server) handlePacks(w http.ResponseWriter, r *http.Request) {
	s.invalidatePacks()
	all, err := s.allPacks(r.Context())
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	out := map[string]any{}
	for name, p := range all {
		src := "api"
		if name == packs.Name && !s.cfg.NoDetectionPack {
			src = "builtin"
		} else if _, ok := s.cfg.FilePacks[name]; ok {
			src = "file"
		}
		out[name] = map[string]any{"source": src, "pack": p}
	}
	writeJSON(w, http.StatusOK, map[string]any{"packs": out})
}

// handlePutPack adds or replaces an analyst pack (osquery pack JSON).
func (s *Server) handlePutPack(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := s.checkPackName(name); err != nil {
		s.fail(w, r, err, nil)
		return
	}
	data, err := readBody(w, r, s.cfg.MaxBodyBytes)
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	if !validText(string(data)) {
		s.fail(w, r, errorf(http.StatusBadRequest, "pack holds a NUL byte or invalid UTF-8"), nil)
		return
	}
	if _, err := ParsePack(data); err != nil {
		s.fail(w, r, errorf(http.StatusBadRequest, "%v", err), nil)
		return
	}
	if err := s.cfg.Store.PutPack(r.Context(), name, data); err != nil {
		s.fail(w, r, err, nil)
		return
	}
	s.invalidatePacks()
	writeJSON(w, http.StatusOK, map[string]any{"name": name})
}

func (s *Server) handleDeletePack(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := s.checkPackName(name); err != nil {
		s.fail(w, r, err, nil)
		return
	}
	err := s.cfg.Store.DeletePack(r.Context(), name)
	if errors.Is(err, store.ErrNotFound) {
		s.fail(w, r, errorf(http.StatusNotFound, "no pack %q", name), nil)
		return
	}
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	s.invalidatePacks()
	w.WriteHeader(http.StatusNoContent)
}

// checkPackName refuses names that are malformed or belong to the
// detection pack or a file pack.
func (s *Server) checkPackName(name string) error {
	if !packName.MatchString(name) {
		return errorf(http.StatusBadRequest, "bad pack name %q", name)
	}
	if name == packs.Name {
		return errorf(http.StatusConflict, "%s is Quarry's detection pack", name)
	}
	if _, ok := s.cfg.FilePacks[name]; ok {
		return errorf(http.StatusConflict, "pack %s comes from a file", name)
	}
	return nil
}
