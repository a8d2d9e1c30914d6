package server

import (
	"net/http"

	"github.com/quarry-sec/quarry/fleet/store"
)

// HostView is a host as GET /api/v1/hosts shows it.
type HostView struct {
	store.Host
	Online bool `json:"online"`
}

func (s *Server) handleHosts(w http.ResponseWriter, r *http.Request) {
	hosts, err := s.cfg.Store.Hosts(r.Context())
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	now := s.cfg.Now()
	out := make([]HostView, 0, len(hosts))
	for _, h := range hosts {
		out = append(out, HostView{Host: h, Online: now.Sub(h.LastSeen) <= s.onlineWindow()})
	}
	writeJSON(w, http.StatusOK, map[string]any{"hosts": out})
}
