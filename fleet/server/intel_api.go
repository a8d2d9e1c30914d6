package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/quarry-sec/quarry/detections/intel"
	"github.com/quarry-sec/quarry/fleet/osqwire"
	"github.com/quarry-sec/quarry/fleet/store"
)

// maxIntelResponse bounds the set data of one osqwire.IntelResponse (agents read
// at most 64 MiB; data is base64 in JSON).
const maxIntelResponse = 24 << 20

// intelSource is what an intel set's source may be called.
var intelSource = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$`)

// IntelVersion is the version of a set: a hash of what agents load.
func IntelVersion(set *store.IntelSet) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%d\x00%d\x00", set.Source, set.Format, set.Confidence, set.TTLSeconds)
	h.Write(set.Data)
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// IntelUpload reads an uploaded set: data in a format (""
// detects it), with the options of a load. It checks the set as an agent
// will read it and returns it ready to store, with what reading it
// skipped.
func IntelUpload(source, format string, confidence int, ttl string, data []byte) (*store.IntelSet, *intel.Feed, error) {
	if !intelSource.MatchString(source) {
		return nil, nil, errorf(http.StatusBadRequest, "bad source %q: letters, digits and _ . : - (at most 100)", source)
	}
	switch intel.Format(format) {
	case "", intel.FormatSTIX, intel.FormatMISP, intel.FormatPlain:
	default:
		return nil, nil, errorf(http.StatusBadRequest, "bad format %q (stix, misp or plain; empty: detected)", format)
	}
	if confidence < 0 || confidence > 100 {
		return nil, nil, errorf(http.StatusBadRequest, "bad confidence %d (0-100)", confidence)
	}
	set := &store.IntelSet{Source: source, Format: format, Confidence: confidence, Data: data}
	if ttl != "" {
		d, err := intel.ParseTTL(ttl)
		if err != nil {
			return nil, nil, errorf(http.StatusBadRequest, "bad ttl %v", err)
		}
		set.TTLSeconds = int64(d.Seconds())
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil, errorf(http.StatusBadRequest, "intel set %s is empty", source)
	}
	if !validText(string(data)) {
		return nil, nil, errorf(http.StatusBadRequest, "intel set %s holds a NUL byte or invalid UTF-8", source)
	}
	feed, err := ReadIntelSet(set)
	if err != nil {
		return nil, nil, errorf(http.StatusBadRequest, "%v", err)
	}
	if len(feed.Indicators) == 0 {
		return nil, nil, errorf(http.StatusBadRequest, "intel set %s: no indicator Quarry matches (%d entries skipped)", source, len(feed.Skipped))
	}
	set.Format, set.Indicators = string(feed.Format), len(feed.Indicators)
	set.Version = IntelVersion(set)
	return set, feed, nil
}

// ReadIntelSet reads a stored set as a feed, with its load options (the
// set's own name for messages: intel set SOURCE).
func ReadIntelSet(set *store.IntelSet) (*intel.Feed, error) {
	opts := intel.Options{Source: set.Source, Confidence: set.Confidence}
	if set.TTLSeconds > 0 {
		opts.TTL = time.Duration(set.TTLSeconds) * time.Second
	}
	return intel.Read(bytes.NewReader(set.Data), "intel set "+set.Source, intel.Format(set.Format), opts)
}

// handleIntelUpload stores a set: POST /api/v1/intel?source=NAME
// [&format=stix|misp|plain][&confidence=N][&ttl=30d], the body the file.
func (s *Server) handleIntelUpload(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	confidence := 0
	if v := q.Get("confidence"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			s.fail(w, r, errorf(http.StatusBadRequest, "bad confidence %q (0-100)", v), nil)
			return
		}
		confidence = n
	}
	data, err := readBody(w, r, s.cfg.MaxBodyBytes)
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	out, err := s.storeIntel(r.Context(), q.Get("source"), q.Get("format"), confidence, q.Get("ttl"), data)
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// IntelUploaded says what storing an uploaded set did.
type IntelUploaded struct {
	store.IntelSet
	// Skipped entries (Unsupported of them valid but not matched) and
	// Duplicates merged, as a load reports them.
	Skipped     int `json:"skipped"`
	Unsupported int `json:"unsupported"`
	Duplicates  int `json:"duplicates"`
}

// storeIntel checks and stores an uploaded set (the API's and the UI's
// upload).
func (s *Server) storeIntel(ctx context.Context, source, format string, confidence int, ttl string, data []byte) (*IntelUploaded, error) {
	set, feed, err := IntelUpload(strings.TrimSpace(source), strings.ToLower(strings.TrimSpace(format)), confidence, strings.TrimSpace(ttl), data)
	if err != nil {
		return nil, err
	}
	if err := s.cfg.Store.PutIntelSet(ctx, set); err != nil {
		return nil, err
	}
	set.Data = nil
	return &IntelUploaded{IntelSet: *set, Skipped: len(feed.Skipped), Unsupported: feed.Unsupported(),
		Duplicates: feed.Duplicates}, nil
}

func (s *Server) handleIntelSets(w http.ResponseWriter, r *http.Request) {
	sets, err := s.cfg.Store.IntelSets(r.Context())
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"sets": sets})
}

func (s *Server) handleIntelDelete(w http.ResponseWriter, r *http.Request) {
	source := r.PathValue("source")
	err := s.cfg.Store.DeleteIntelSet(r.Context(), source)
	if errors.Is(err, store.ErrNotFound) {
		s.fail(w, r, errorf(http.StatusNotFound, "no intel set %q", source), nil)
		return
	}
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"source": source})
}

// handleIntelFetch answers an agent's osqwire.PathIntel request: the sets it lacks
// or holds at another version, and the fleet's current versions.
func (s *Server) handleIntelFetch(w http.ResponseWriter, r *http.Request, _ *store.Host, body []byte) {
	var req osqwire.IntelRequest
	if err := json.Unmarshal(body, &req); err != nil {
		s.fail(w, r, errorf(http.StatusBadRequest, "malformed JSON: %v", err), nil)
		return
	}
	sets, err := s.cfg.Store.IntelSets(r.Context())
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	resp := osqwire.IntelResponse{Current: map[string]string{}, Sets: []osqwire.IntelSet{}}
	size := 0
	for _, set := range sets {
		resp.Current[set.Source] = set.Version
		if req.Have[set.Source] == set.Version {
			continue
		}
		if size > 0 && size >= maxIntelResponse {
			resp.More = true
			continue
		}
		full, err := s.cfg.Store.IntelSetData(r.Context(), set.Source)
		if errors.Is(err, store.ErrNotFound) {
			delete(resp.Current, set.Source) // removed meanwhile
			continue
		}
		if err != nil {
			s.fail(w, r, err, nil)
			return
		}
		resp.Current[set.Source] = full.Version
		size += len(full.Data)
		resp.Sets = append(resp.Sets, osqwire.IntelSet{Source: full.Source, Format: full.Format, Confidence: full.Confidence,
			TTLSeconds: full.TTLSeconds, Version: full.Version, Data: full.Data})
	}
	writeJSON(w, http.StatusOK, resp)
}
