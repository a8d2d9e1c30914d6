package server

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/telemetry"
)

// parseTime reads a time parameter: RFC 3339, a date (YYYY-MM-DD, UTC),
// UNIX seconds, or a Go duration meaning that long before now ("24h").
func parseTime(v string, now time.Time) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	if sec, err := strconv.ParseInt(v, 10, 64); err == nil && sec >= 0 {
		return time.Unix(sec, 0), nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, errorf(http.StatusBadRequest, "bad time %q (RFC 3339, YYYY-MM-DD, UNIX seconds or a duration such as 24h)", v)
}

// timeRange reads since and until.
func (s *Server) timeRange(q url.Values) (since, until time.Time, err error) {
	now := s.cfg.Now()
	if since, err = parseTime(q.Get("since"), now); err != nil {
		return
	}
	until, err = parseTime(q.Get("until"), now)
	return
}

// TimeParam is the parameter that says which time since and until bound:
// the event's ("event", the default) or when Quarry detected it
// ("detected").
const TimeParam = "time"

// timeField reads the time parameter.
func timeField(q url.Values) (store.TimeField, error) {
	switch v := strings.ToLower(strings.TrimSpace(q.Get(TimeParam))); v {
	case "", "event":
		return store.TimeEvent, nil
	case "detected":
		return store.TimeDetected, nil
	default:
		return 0, errorf(http.StatusBadRequest, "bad time %q (event or detected: which time since and until bound)", v)
	}
}

// pageParams reads limit (default 100, at most 10,000) and offset.
func pageParams(q url.Values) (limit, offset int, err error) {
	limit, offset = 100, 0
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 10000 {
			return 0, 0, errorf(http.StatusBadRequest, "bad limit %q (1..10000)", v)
		}
	}
	if v := q.Get("offset"); v != "" {
		if offset, err = strconv.Atoi(v); err != nil || offset < 0 {
			return 0, 0, errorf(http.StatusBadRequest, "bad offset %q", v)
		}
	}
	return limit, offset, nil
}

// list reads a comma-separated (or repeated) parameter.
func list(q url.Values, key string) []string {
	var out []string
	for _, v := range q[key] {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

var techniqueID = regexp.MustCompile(`^T[0-9]{4}(\.[0-9]{3})?$`)

var severities = map[string]bool{"informational": true, "low": true, "medium": true, "high": true, "critical": true}

// detectionFilter reads the detection filters shared by the detections,
// summary and layer endpoints.
func (s *Server) detectionFilter(ctx context.Context, q url.Values) (store.DetectionFilter, error) {
	var f store.DetectionFilter
	var err error
	if f.Since, f.Until, err = s.timeRange(q); err != nil {
		return f, err
	}
	if f.By, err = timeField(q); err != nil {
		return f, err
	}
	for _, t := range list(q, "technique") {
		if strings.EqualFold(t, telemetry.Untagged) {
			f.Techniques = append(f.Techniques, telemetry.Untagged)
			continue
		}
		t = strings.ToUpper(t)
		if !techniqueID.MatchString(t) {
			return f, errorf(http.StatusBadRequest, "bad technique %q (T1234 or T1234.001, or untagged)", t)
		}
		f.Techniques = append(f.Techniques, t)
		if r, _, ok := s.cfg.KB.Resolve(t); ok && r.ID != t { // an old ID: its successor too
			f.Techniques = append(f.Techniques, r.ID)
		}
		// The same technique under the other ATT&CK version's ID (v19's
		// T1685 is v18.1's T1562.001): rules of both are stored as written.
		for _, v19 := range []bool{false, true} {
			if id := s.cfg.KB.IDInVersion(t, v19); id != "" && id != t {
				f.Techniques = append(f.Techniques, id)
			}
		}
	}
	for _, t := range list(q, "tactic") {
		short, ok := s.tacticShortnames(t)
		if !ok {
			return f, errorf(http.StatusBadRequest, "unknown tactic %q (a shortname such as credential-access, or an ID such as TA0006)", t)
		}
		f.Tactics = append(f.Tactics, short...)
	}
	switch v := strings.ToLower(strings.TrimSpace(q.Get("kind"))); v {
	case "", "all":
	case telemetry.KindIOA, telemetry.KindIOC:
		f.Kind = v
	default:
		return f, errorf(http.StatusBadRequest, "bad kind %q (ioa, ioc or all)", v)
	}
	for _, v := range list(q, "severity") {
		v = strings.ToLower(v)
		if !severities[v] {
			return f, errorf(http.StatusBadRequest, "bad severity %q (informational, low, medium, high, critical)", v)
		}
		f.Severities = append(f.Severities, v)
	}
	if f.HostIDs, err = s.hostFilter(ctx, q); err != nil {
		return f, err
	}
	if f.Limit, f.Offset, err = pageParams(q); err != nil {
		return f, err
	}
	return f, nil
}

// tacticShortnames resolves a tactic given by shortname, ID or name, of
// either ATT&CK version, to the shortnames to match: its own and its
// v18.1 counterpart (detections are stored with v18.1 tactics, so v19's
// stealth or defense-impairment finds defense-evasion).
func (s *Server) tacticShortnames(v string) ([]string, bool) {
	var found []string
	if t, ok := s.cfg.KB.Tactic(v); ok {
		found = []string{t.ShortName}
	} else if ts := s.cfg.KB.TacticsByID(v); len(ts) > 0 {
		for _, t := range ts {
			found = append(found, t.ShortName)
		}
	} else if t, ok := s.cfg.KB.Tactic(strings.ReplaceAll(strings.ToLower(strings.TrimSpace(v)), " ", "-")); ok {
		found = []string{t.ShortName}
	} else {
		return nil, false
	}
	out := found
	for _, f := range found {
		if m := s.cfg.KB.TacticIn(f, false); m != "" && m != f {
			out = append(out, m)
		}
	}
	return out, true
}

// resolveHosts finds hosts by ID or host identifier; it returns the IDs
// found and the names that matched none.
func (s *Server) resolveHosts(ctx context.Context, names []string) (ids, unknown []string, err error) {
	hosts, err := s.cfg.Store.Hosts(ctx)
	if err != nil {
		return nil, nil, err
	}
	ids, unknown = store.MatchHosts(hosts, names)
	return ids, unknown, nil
}

// hostFilter resolves a filter's hosts: host (IDs or host identifiers) and
// hostname (the hostnames hosts report, matched only when asked for: a
// host may claim another's). Neither: nil, every host. Both: hosts
// matching both. When names are given but name no host, the filter holds
// noHost alone, which matches nothing.
func (s *Server) hostFilter(ctx context.Context, q url.Values) ([]string, error) {
	byID, byName := list(q, "host"), list(q, "hostname")
	if len(byID) == 0 && len(byName) == 0 {
		return nil, nil
	}
	hosts, err := s.cfg.Store.Hosts(ctx)
	if err != nil {
		return nil, err
	}
	var ids []string
	switch {
	case len(byName) == 0:
		ids, _ = store.MatchHosts(hosts, byID)
	case len(byID) == 0:
		ids, _ = store.MatchHostnames(hosts, byName)
	default:
		a, _ := store.MatchHosts(hosts, byID)
		b, _ := store.MatchHostnames(hosts, byName)
		named := map[string]bool{}
		for _, id := range b {
			named[id] = true
		}
		for _, id := range a {
			if named[id] {
				ids = append(ids, id)
			}
		}
	}
	return append(ids, noHost), nil
}
