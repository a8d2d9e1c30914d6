package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/quarry-sec/quarry/fleet/store"
)

// TokenPrefix starts every analyst token.
const TokenPrefix = "qft_"

// HashToken is how a token is stored: the hex SHA-256 of the token (tokens
// are 256 random bits, so a fast hash is enough).
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// CreateToken makes a new analyst API token, stores its hash under name
// and returns the token, which is shown once and never stored.
func CreateToken(ctx context.Context, st store.Store, name string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("create token: %w", err)
	}
	token := TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	if err := st.CreateToken(ctx, name, HashToken(token)); err != nil {
		return "", err
	}
	return token, nil
}

// authParam returns the credentials of the Authorization header when its
// scheme is scheme (compared without regard to case, as RFC 9110 says).
func authParam(r *http.Request, scheme string) (string, bool) {
	auth := strings.TrimSpace(r.Header.Get("Authorization"))
	name, param, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(name, scheme) {
		return "", false
	}
	return strings.TrimSpace(param), true
}

// analyst requires a valid bearer token (Authorization: Bearer TOKEN, the
// scheme in any case);
// without one the answer is 401.
func (s *Server) analyst(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, ok := authParam(r, "Bearer")
		if !ok || token == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="quarry-fleet"`)
			s.fail(w, r, errorf(http.StatusUnauthorized, "missing bearer token"), nil)
			return
		}
		valid, err := s.cfg.Store.TokenExists(r.Context(), HashToken(token))
		if err != nil {
			s.fail(w, r, err, nil)
			return
		}
		s.storeOK()
		if !valid {
			w.Header().Set("WWW-Authenticate", `Bearer realm="quarry-fleet", error="invalid_token"`)
			s.fail(w, r, errorf(http.StatusUnauthorized, "invalid token"), nil)
			return
		}
		if err := checkRequestText(r); err != nil {
			s.fail(w, r, err, nil)
			return
		}
		next(w, r)
	}
}

// handleTokens lists the analyst tokens: {"tokens": [{"id", "name", "created"}]}.
func (s *Server) handleTokens(w http.ResponseWriter, r *http.Request) {
	toks, err := s.cfg.Store.Tokens(r.Context())
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	if toks == nil {
		toks = []store.Token{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": toks})
}

// handleRevokeToken revokes a token by its ID (204; 404 when none has it).
func (s *Server) handleRevokeToken(w http.ResponseWriter, r *http.Request) {
	err := s.cfg.Store.RevokeToken(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		s.fail(w, r, errorf(http.StatusNotFound, "no token %q", r.PathValue("id")), nil)
		return
	}
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
