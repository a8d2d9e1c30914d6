package server

import (
	"context"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/telemetry"
)

// listHandler answers a list of the analyst API (detections, incidents,
// sandbox runs): the filter parse reads from the query string, and a page
// of list's items under key with the count of all: {"total": N, key: […]}.
func listHandler[F, T any](s *Server, key string, parse func(context.Context, url.Values) (F, error),
	list func(context.Context, F) ([]T, int, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f, err := parse(r.Context(), r.URL.Query())
		if err != nil {
			s.fail(w, r, err, nil)
			return
		}
		items, total, err := list(r.Context(), f)
		if err != nil {
			s.fail(w, r, err, nil)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"total": total, key: items})
	}
}

// Bucket is one group of GET /api/v1/detections/summary.
type Bucket struct {
	Key   string `json:"key"`
	Name  string `json:"name,omitempty"` // technique or tactic name
	Count int64  `json:"count"`
}

var summaryKeys = map[string]store.GroupKey{
	"technique": store.KeyTechnique, "tactic": store.KeyTactic, "host": store.KeyHost, "day": store.KeyDay,
}

func (s *Server) handleSummary(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	by := q.Get("by")
	if by == "" {
		by = "technique"
	}
	key, ok := summaryKeys[by]
	if !ok {
		s.fail(w, r, errorf(http.StatusBadRequest, "bad by %q (technique, tactic, host or day)", by), nil)
		return
	}
	f, err := s.detectionFilter(r.Context(), q)
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	counts, err := s.cfg.Store.CountDetections(r.Context(), f, key)
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	buckets, err := s.buckets(r, key, counts)
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"by": by, "buckets": buckets})
}

// buckets names the groups: tactic lists split (a detection counts under
// each of its tactics), hosts by host identifier, days as YYYY-MM-DD.
func (s *Server) buckets(r *http.Request, key store.GroupKey, counts []store.Count) ([]Bucket, error) {
	sums := map[string]int64{}
	for _, c := range counts {
		switch key {
		case store.KeyTactic:
			for _, t := range strings.Split(c.Keys[0], ",") {
				if t = strings.TrimSpace(t); t != "" {
					sums[t] += c.N
				}
			}
		case store.KeyDay:
			sec, _ := strconv.ParseInt(c.Keys[0], 10, 64)
			sums[time.Unix(sec, 0).UTC().Format(time.DateOnly)] += c.N
		default:
			sums[c.Keys[0]] += c.N
		}
	}
	names := map[string]string{}
	if key == store.KeyHost {
		hosts, err := s.cfg.Store.Hosts(r.Context())
		if err != nil {
			return nil, err
		}
		for _, h := range hosts {
			names[h.ID] = h.HostIdentifier
		}
	}
	out := make([]Bucket, 0, len(sums))
	for k, n := range sums {
		b := Bucket{Key: k, Count: n}
		switch key {
		case store.KeyHost:
			if ident, ok := names[k]; ok {
				b.Key, b.Name = ident, k
			}
		case store.KeyTechnique:
			if t, ok := s.cfg.KB.Technique(k); ok {
				b.Name = t.Name
			} else if k == telemetry.Untagged {
				b.Name = "rules naming no ATT&CK technique"
			}
		case store.KeyTactic:
			if t, ok := s.cfg.KB.Tactic(k); ok {
				b.Name = t.Name
			}
		}
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool {
		if key == store.KeyDay {
			return out[i].Key < out[j].Key
		}
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Key < out[j].Key
	})
	return out, nil
}

// handleLayer answers the fleet's detections as an ATT&CK Navigator layer:
// each technique scored by its detections, annotated with the rules.
func (s *Server) handleLayer(w http.ResponseWriter, r *http.Request) {
	f, err := s.detectionFilter(r.Context(), r.URL.Query())
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	counts, err := s.cfg.Store.CountDetections(r.Context(), f, store.KeyTechnique, store.KeyRule)
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	scores := map[string]attack.LayerScore{}
	for _, c := range counts {
		if c.Keys[0] == telemetry.Untagged {
			continue // no cell in the matrix
		}
		sc := scores[c.Keys[0]]
		sc.Score += float64(c.N)
		if c.Keys[1] != "" {
			sc.Names = append(sc.Names, c.Keys[1])
		}
		scores[c.Keys[0]] = sc
	}
	desc := "Detections reported by the Quarry fleet"
	if !f.Since.IsZero() || !f.Until.IsZero() {
		desc += " from " + timeOrOpen(f.Since) + " until " + timeOrOpen(f.Until)
	}
	l := attack.NewLayer(s.cfg.KB, "Quarry fleet detections", desc, "detections", scores)
	w.Header().Set("Content-Type", "application/json")
	l.Write(w)
}

func timeOrOpen(t time.Time) string {
	if t.IsZero() {
		return "(open)"
	}
	return t.UTC().Format(time.RFC3339)
}
