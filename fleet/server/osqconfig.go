package server

import (
	"net/http"

	"github.com/quarry-sec/quarry/fleet/store"
)

// defaultOptions are the osquery options every config carries.
func (s *Server) defaultOptions() map[string]any {
	opts := map[string]any{
		"distributed_interval": int(s.cfg.DistributedInterval.Seconds()),
		"logger_tls_period":    10,
		"pack_delimiter":       "_",
	}
	for k, v := range s.cfg.Options {
		opts[k] = v
	}
	return opts
}

// handleConfig answers osquery's config request: options, an empty
// schedule and the packs for the host's platform.
func (s *Server) handleConfig(w http.ResponseWriter, r *http.Request, h *store.Host, _ []byte) {
	all, err := s.allPacks(r.Context())
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	out := map[string]Pack{}
	for name, p := range all {
		if fp, ok := p.forFamily(h.Family); ok {
			out[name] = fp
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"options":      s.defaultOptions(),
		"schedule":     map[string]any{},
		"packs":        out,
		"node_invalid": false,
	})
}
