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
	"github.com/quarry-sec/quarry/fleet/store"
)

// PathIntel is where agents fetch the fleet's threat intelligence sets
// (POST, with their node key): see IntelRequest.
const PathIntel = "/api/v1/quarry/intel"

// IntelRequest is what an agent sends to PathIntel: its node key and the
// version of each set it holds.
type IntelRequest struct {
	NodeKey string            `json:"node_key"`
	Have    map[string]string `json:"have"`
}

// IntelResponse is the server's answer: Current names every set the fleet
// has now, with its version (an agent drops the fleet's sets not named);
// Sets holds, with their data, those the agent lacks or holds at another
// version; More says that some were left for the next request (a response
// carries about maxIntelResponse bytes of data).
type IntelResponse struct {
	Current map[string]string `json:"current"`
	Sets    []store.IntelSet  `json:"sets"`
	More    bool              `json:"more,omitempty"`
}

// maxIntelResponse bounds the set data of one IntelResponse (agents read
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

// handleIntelFetch answers an agent's PathIntel request: the sets it lacks
// or holds at another version, and the fleet's current versions.
func (s *Server) handleIntelFetch(w http.ResponseWriter, r *http.Request, _ *store.Host, body []byte) {
	var req IntelRequest
	if err := json.Unmarshal(body, &req); err != nil {
		s.fail(w, r, errorf(http.StatusBadRequest, "malformed JSON: %v", err), nil)
		return
	}
	sets, err := s.cfg.Store.IntelSets(r.Context())
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	resp := IntelResponse{Current: map[string]string{}, Sets: []store.IntelSet{}}
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
		resp.Sets = append(resp.Sets, *full)
	}
	writeJSON(w, http.StatusOK, resp)
}
