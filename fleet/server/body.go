package server

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/quarry-sec/quarry/fleet/store"
)

// httpError is an error with the status to answer it with.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) error {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

// readBody reads a request body of at most limit bytes, compressed and
// decompressed (Content-Encoding: gzip is undone).
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body := http.MaxBytesReader(w, r.Body, limit)
	var src io.Reader = body
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			return nil, classifyRead(err, "gzip body")
		}
		defer zr.Close()
		src = zr
	default:
		return nil, errorf(http.StatusUnsupportedMediaType, "unsupported Content-Encoding %q", enc)
	}
	data, err := io.ReadAll(io.LimitReader(src, limit+1))
	if err != nil {
		return nil, classifyRead(err, "body")
	}
	if int64(len(data)) > limit {
		return nil, errorf(http.StatusRequestEntityTooLarge, "request body over %d bytes", limit)
	}
	return data, nil
}

func classifyRead(err error, what string) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return errorf(http.StatusRequestEntityTooLarge, "request body over %d bytes", mbe.Limit)
	}
	return errorf(http.StatusBadRequest, "read %s: %v", what, err)
}

// decodeJSON reads the body into v.
func (s *Server) decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	data, err := readBody(w, r, s.cfg.MaxBodyBytes)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return errorf(http.StatusBadRequest, "empty request body")
	}
	if err := json.Unmarshal(data, v); err != nil {
		return errorf(http.StatusBadRequest, "malformed JSON: %v", err)
	}
	return nil
}

// outage records that the database is unavailable and reports whether
// this begins an outage (the failure is to be reported).
func (s *Server) outage() bool {
	s.outageMu.Lock()
	defer s.outageMu.Unlock()
	if s.down.Load() {
		return false
	}
	s.down.Store(true)
	s.downSince = s.cfg.Now()
	return true
}

// storeOK records that a store call succeeded: an outage, if any, is over.
func (s *Server) storeOK() {
	if !s.down.Load() {
		return
	}
	s.outageMu.Lock()
	if !s.down.Load() {
		s.outageMu.Unlock()
		return
	}
	s.down.Store(false)
	d := s.cfg.Now().Sub(s.downSince)
	s.outageMu.Unlock()
	s.cfg.OnRecovered(d)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// fail answers err: its own status for an httpError, else 500 (reported to
// OnError). extra fields are added to the JSON error body.
//
// A store failure that means the database is unavailable (see
// store.Unavailable) is answered 503 with Retry-After, so osquery and
// agents back off and send again; only the first of an outage is
// reported (the outage ends at the next store call that succeeds, see
// storeOK).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error, extra map[string]any) {
	status := http.StatusInternalServerError
	msg := "internal error"
	var he *httpError
	switch {
	case errors.As(err, &he):
		status, msg = he.status, he.msg
	case store.Unavailable(err):
		status, msg = http.StatusServiceUnavailable, "database unavailable, try again later"
		w.Header().Set("Retry-After", strconv.Itoa(int((s.cfg.RetryAfter+time.Second-1)/time.Second)))
		if s.outage() {
			s.cfg.OnError(r, fmt.Errorf("database unavailable (answering 503 until it answers again): %w", err))
		}
	default:
		s.cfg.OnError(r, err)
	}
	body := map[string]any{"error": msg}
	for k, v := range extra {
		body[k] = v
	}
	writeJSON(w, status, body)
}
