package web

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/quarry-sec/quarry/fleet/server"
)

// Cookie names.
const (
	sessionCookie = "quarry_session"
	loginCookie   = "quarry_login_csrf"
)

// session is a signed-in analyst. It lives in its cookie, sealed (see
// lookup): the server keeps no session state, so every replica sharing
// Config.SessionKey serves it.
type session struct {
	csrf    string
	token   string // the analyst token, for calls to the analyst API
	expires time.Time
}

type sessionKey struct{}

func sessionFrom(ctx context.Context) *session {
	s, _ := ctx.Value(sessionKey{}).(*session)
	return s
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

func equalTokens(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func (ui *UI) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: ui.cfg.SecureCookies, MaxAge: maxAge}
}

// auth lets signed-in analysts through; others go to the sign-in page. A
// POST must carry the session's CSRF token (form field csrf).
func (ui *UI) auth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := ui.lookup(r)
		if s == nil {
			if r.Method == http.MethodGet && !strings.HasSuffix(r.URL.Path, "/data") {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			http.Error(w, "not signed in", http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodPost {
			if !equalTokens(r.PostFormValue("csrf"), s.csrf) {
				http.Error(w, "bad or missing CSRF token: reload the page", http.StatusForbidden)
				return
			}
		}
		next(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, s)))
	}
}

// lookup returns the session of the request's cookie: sealed (AES-GCM)
// under Config.SessionKey, so any replica sharing the key reads it, and
// only while its token is still valid (a revoked token ends its sessions).
func (ui *UI) lookup(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil
	}
	s := ui.open(c.Value)
	if s == nil || ui.cfg.Now().After(s.expires) {
		return nil
	}
	ok, err := ui.cfg.Store.TokenExists(r.Context(), server.HashToken(s.token))
	if err != nil || !ok {
		return nil
	}
	return s
}

// sealedSession is what a session cookie holds, sealed.
type sealedSession struct {
	Token   string `json:"t"`
	CSRF    string `json:"c"`
	Expires int64  `json:"e"`
}

// seal returns s as a cookie value: nonce and AES-GCM ciphertext of its
// JSON, base64url.
func (ui *UI) seal(s *session) string {
	plain, _ := json.Marshal(sealedSession{Token: s.token, CSRF: s.csrf, Expires: s.expires.Unix()})
	nonce := make([]byte, ui.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(ui.aead.Seal(nonce, nonce, plain, []byte(sessionCookie)))
}

// open is seal's inverse; nil for a value not sealed under the key.
func (ui *UI) open(v string) *session {
	raw, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || len(raw) < ui.aead.NonceSize() {
		return nil
	}
	n := ui.aead.NonceSize()
	plain, err := ui.aead.Open(nil, raw[:n], raw[n:], []byte(sessionCookie))
	if err != nil {
		return nil
	}
	var ss sealedSession
	if json.Unmarshal(plain, &ss) != nil || ss.Token == "" || ss.CSRF == "" {
		return nil
	}
	return &session{csrf: ss.CSRF, token: ss.Token, expires: time.Unix(ss.Expires, 0)}
}

// sessionAEAD is AES-256-GCM under key (SHA-256 of it, so any length
// will do), or under a random key when there is none.
func sessionAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) == 0 {
		key = make([]byte, 32)
		_, _ = rand.Read(key)
	}
	k := sha256.Sum256(key)
	block, err := aes.NewCipher(k[:])
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

type loginData struct {
	LoginCSRF, Next, Error string
}

func (ui *UI) handleLoginPage(w http.ResponseWriter, r *http.Request) {
	tok := randomToken()
	http.SetCookie(w, ui.cookie(loginCookie, tok, 600))
	ui.render(w, r, "login", "Sign in", loginData{LoginCSRF: tok, Next: safeNext(r.URL.Query().Get("next"))})
}

// safeNext keeps a post-login destination on this site: a path starting
// with one slash, without control characters or backslashes anywhere
// (browsers drop tabs and newlines and read \ as /, so "/\t/evil" and
// "/\\evil" lead off-site), no scheme and no host. Anything else is "/".
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") {
		return "/"
	}
	for _, c := range next {
		if c < 0x20 || c == 0x7f || c == '\\' || (c >= 0x80 && c <= 0x9f) {
			return "/"
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(u.Path, "/") ||
		strings.HasPrefix(u.Path, "//") {
		return "/"
	}
	return next
}

func (ui *UI) handleLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	c, err := r.Cookie(loginCookie)
	if err != nil || !equalTokens(r.PostFormValue("csrf"), c.Value) {
		http.Error(w, "bad or missing CSRF token: reload the sign-in page", http.StatusForbidden)
		return
	}
	next := safeNext(r.PostFormValue("next"))
	token := strings.TrimSpace(r.PostFormValue("token"))
	ok := false
	if token != "" {
		ok, err = ui.cfg.Store.TokenExists(r.Context(), server.HashToken(token))
		if err != nil {
			ui.fail(w, r, err)
			return
		}
	}
	if !ok {
		tok := randomToken()
		http.SetCookie(w, ui.cookie(loginCookie, tok, 600))
		w.WriteHeader(http.StatusUnauthorized)
		ui.render(w, r, "login", "Sign in", loginData{LoginCSRF: tok, Next: next, Error: "Unknown token."})
		return
	}
	s := &session{csrf: randomToken(), token: token, expires: ui.cfg.Now().Add(ui.cfg.SessionTTL)}
	http.SetCookie(w, ui.cookie(loginCookie, "", -1))
	http.SetCookie(w, ui.cookie(sessionCookie, ui.seal(s), int(ui.cfg.SessionTTL/time.Second)))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (ui *UI) handleLogout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, ui.cookie(sessionCookie, "", -1))
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
