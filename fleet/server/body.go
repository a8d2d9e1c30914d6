package server

import (
	"bytes"
	"compress/gzip"
	"context"
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
	status     int
	msg        string
	retryAfter bool // answer with Retry-After
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) error {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

// readBody reads a request body of at most limit bytes, compressed and
// decompressed (Content-Encoding: gzip is undone).
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	data, _, err := readBodyIn(w, r, limit, nil)
	return data, err
}

// bodyChunk is how much of a body is read (and charged to a budget) at
// a time.
const bodyChunk = 32 << 10

// readBodyIn is readBody charging the buffer it reads into to budget (nil:
// none): a read that cannot get its next bytes within budgetWait is
// answered 503 with Retry-After. The caller must call release once it no
// longer holds the body (also on error).
func readBodyIn(w http.ResponseWriter, r *http.Request, limit int64, budget *byteBudget) (data []byte, release func(), err error) {
	var charged int64
	release = func() {
		if budget != nil {
			budget.release(charged)
			charged = 0
		}
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	var src io.Reader = body
	plain := true // the body is read as sent: Content-Length is its size
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		plain = false
		zr, err := gzip.NewReader(body)
		if err != nil {
			return nil, release, classifyRead(err, "gzip body")
		}
		defer zr.Close()
		src = zr
	default:
		return nil, release, errorf(http.StatusUnsupportedMediaType, "unsupported Content-Encoding %q", enc)
	}
	buf := make([]byte, 0)
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > limit {
				return nil, release, errorf(http.StatusRequestEntityTooLarge, "request body over %d bytes", limit)
			}
			grow := int64(max(bodyChunk, cap(buf))) // double, as append would
			if cap(buf) == 0 && plain && r.ContentLength >= 0 && r.ContentLength < bodyChunk {
				// A small body is charged its size (and a byte to read the
				// end into), not a whole chunk: osquery's requests are a
				// few hundred bytes, and charging 32 KiB each made a few
				// thousand requests waiting on the database fill the budget
				// and turn away every other request, reads included.
				grow = r.ContentLength + 1
			}
			grow = min(grow, limit+1-int64(len(buf)))
			newCap := int64(len(buf)) + grow
			if budget != nil { // the new buffer; the old one is released once copied
				ctx, cancel := context.WithTimeout(r.Context(), budgetWait)
				err := budget.acquire(ctx, newCap)
				cancel()
				if err != nil {
					return nil, release, &httpError{status: http.StatusServiceUnavailable, msg: "server busy, try again later", retryAfter: true}
				}
				charged += newCap
			}
			nb := make([]byte, len(buf), newCap)
			copy(nb, buf)
			if budget != nil && cap(buf) > 0 { // the old buffer is garbage now
				budget.release(int64(cap(buf)))
				charged -= int64(cap(buf))
			}
			buf = nb
		}
		n, err := src.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, release, classifyRead(err, "body")
		}
	}
	if int64(len(buf)) > limit {
		return nil, release, errorf(http.StatusRequestEntityTooLarge, "request body over %d bytes", limit)
	}
	return buf, release, nil
}

// budgetWait is how long a body read waits for bytes of the in-flight
// budget before the request is answered 503.
const budgetWait = 2 * time.Second

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
	return unmarshalBody(data, v)
}

// unmarshalBody decodes a JSON request body into v.
func unmarshalBody(data []byte, v any) error {
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
		if he.retryAfter {
			w.Header().Set("Retry-After", strconv.Itoa(int((s.cfg.RetryAfter+time.Second-1)/time.Second)))
		}
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
