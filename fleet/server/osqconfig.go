package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"

	"github.com/quarry-sec/quarry/fleet/osqwire"
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
// schedule and the packs for the host's platform family.
func (s *Server) handleConfig(w http.ResponseWriter, r *http.Request, h *store.Host, _ []byte) {
	body, err := s.configBody(r.Context(), h.Family)
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

// configBody is the config for hosts of family, built once per family and
// version of the pack cache.
func (s *Server) configBody(ctx context.Context, family string) ([]byte, error) {
	all, err := s.allPacks(ctx)
	if err != nil {
		return nil, err
	}
	c := &s.packs
	c.mu.Lock()
	cached, ok := c.configs[family]
	current := sameMap(c.packs, all)
	c.mu.Unlock()
	if ok && current {
		return cached, nil
	}
	cfg := osqwire.ConfigResponse{Options: s.defaultOptions(), Schedule: map[string]osqwire.ScheduledQuery{},
		Packs: map[string]json.RawMessage{}}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for name, p := range all {
		if fp, ok := p.forFamily(family); ok {
			buf.Reset()
			if err := enc.Encode(fp); err != nil {
				return nil, fmt.Errorf("config: pack %s: %w", name, err)
			}
			cfg.Packs[name] = bytes.TrimSpace(bytes.Clone(buf.Bytes()))
		}
	}
	buf.Reset()
	if err := enc.Encode(cfg); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if current {
		c.mu.Lock()
		if sameMap(c.packs, all) { // still the cached packs
			if c.configs == nil {
				c.configs = map[string][]byte{}
			}
			c.configs[family] = buf.Bytes()
		}
		c.mu.Unlock()
	}
	return buf.Bytes(), nil
}

// sameMap reports whether a and b are the same map (not equal ones).
func sameMap(a, b map[string]Pack) bool {
	return a != nil && reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}
