package web

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
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

// session is a signed-in analyst.
type session struct {
	id, csrf string
	token    string // the analyst token, for calls to the analyst API
	expires  time.Time
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

func (ui *UI) lookup(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil
	}
	ui.mu.Lock()
	defer ui.mu.Unlock()
	s := ui.sessions[c.Value]
	if s == nil {
		return nil
	}
	if ui.cfg.Now().After(s.expires) {
		delete(ui.sessions, c.Value)
		return nil
	}
	return s
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
	s := &session{id: randomToken(), csrf: randomToken(), token: token, expires: ui.cfg.Now().Add(ui.cfg.SessionTTL)}
	ui.mu.Lock()
	now := ui.cfg.Now()
	for id, old := range ui.sessions { // drop expired sessions now and then
		if now.After(old.expires) {
			delete(ui.sessions, id)
		}
	}
	ui.sessions[s.id] = s
	ui.mu.Unlock()
	http.SetCookie(w, ui.cookie(loginCookie, "", -1))
	http.SetCookie(w, ui.cookie(sessionCookie, s.id, int(ui.cfg.SessionTTL/time.Second)))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (ui *UI) handleLogout(w http.ResponseWriter, r *http.Request) {
	if s := sessionFrom(r.Context()); s != nil {
		ui.mu.Lock()
		delete(ui.sessions, s.id)
		ui.mu.Unlock()
	}
	http.SetCookie(w, ui.cookie(sessionCookie, "", -1))
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
