// Package web is the fleet's web UI for analysts: sign-in with an analyst
// token, an overview, the ATT&CK matrix as a heat map (coverage and
// detections layers, Navigator downloads), technique pages, detections with
// their process trees, live hunts and hosts. Pages are rendered on the
// server with html/template; the CSS and a little vanilla JavaScript are
// embedded. Everything the pages show comes from the fleet store through
// server-side paging and aggregate queries, so pages stay fast with
// thousands of hosts and hundreds of thousands of detections.
//
// # Sessions
//
// An analyst signs in with an analyst API token (checked against the
// store's token hashes). The session lives in this process's memory, keyed
// by a random ID in an HttpOnly, SameSite=Strict cookie; each session has
// its own CSRF token, which every POST form carries and the handler checks
// in constant time. The sign-in form itself is protected by a
// double-submit cookie. A Content-Security-Policy allows only the UI's own
// scripts and styles: no inline script, no inline event handlers. Sessions
// do not survive a restart and are not shared between server replicas (an
// analyst signs in again).
//
// # Live hunts
//
// The hunt page does not run hunts itself: it calls the fleet server's
// analyst API (POST /api/v1/hunts, GET /api/v1/hunts/{id}) in-process with
// the session's token, so targeting, deadlines and per-host status are the
// server's.
//
// # Process trees
//
// A detection carries the process it fired on (pid, path, command line,
// parent path), not the processes around it. The processes around a hit are
// gathered where they are known, on the host, as an EDR does: ProcessPack is
// an osquery pack (served besides Quarry's detection pack; cmd/quarry adds
// it) whose scheduled query quarry_process_context selects, on each host,
// the process_events rows of every hit of the last hour, their ancestors
// (parent by parent, back over a day), their descendants (child by child)
// and the exit events of all of them: 0.8 s on the embedded engine for a
// day of 72,000 process events and ten hits, once a minute. The query is
// differential, so each row reaches the fleet once, and a hit's children
// started after the first run arrive with the next runs. The fleet stores
// the rows as ordinary scheduled-query results; the detection page reads
// the host's rows around the detection's time and builds the tree: each
// process is matched to its parent by GUID (Sysmon) or by parent pid and
// the latest start of that pid before the child's that had not exited by
// then, exited processes are kept (marked with their exit code when the
// exit event is known), and each node is annotated with the techniques of
// the detections on its event. Where a host sent no context (osquery
// without the pack), the page draws what the detection records.
package web

import (
	"context"
	"crypto/cipher"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/tables"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config configures the UI.
type Config struct {
	// Store is the fleet store; it must also implement store.WebQueries
	// (the SQLite and PostgreSQL stores do). Required.
	Store store.Store
	// KB is the ATT&CK knowledge base. Required.
	KB *attack.KB
	// Rules are the enabled detection rules: the coverage layer and the
	// rules shown on technique pages.
	Rules []*detections.Rule
	// API is the fleet server's handler (server.Server.Handler); the hunt
	// pages call its analyst API. Required for hunts.
	API http.Handler
	// Tables are listed in the hunt page's schema browser; nil lists
	// DefaultTables(KB).
	Tables []tables.Table
	// OnlineWindow: a host seen within it is online. Default 60 s.
	OnlineWindow time.Duration
	// SecureCookies sets the Secure flag on cookies (serve over TLS).
	SecureCookies bool
	// SessionKey seals session cookies: replicas behind one load balancer
	// must share it (cmd/quarry derives it from the enroll secret). Empty:
	// a random key, so sessions end with the process.
	SessionKey []byte
	// SessionTTL is how long a session lasts. Default 12 h.
	SessionTTL time.Duration
	// Now replaces time.Now (tests).
	Now func() time.Time
	// OnError receives failures answered with a 500 page.
	OnError func(r *http.Request, err error)
}

// UI is the web UI. Its Handler serves every page.
type UI struct {
	cfg       Config
	wq        store.WebQueries
	pages     map[string]*template.Template
	mux       *http.ServeMux
	matrix    *matrixModel        // v18.1
	matrixV19 *matrixModel        // nil without the v19 overlay
	cover     map[string][]string // technique ID → titles of the rules covering it
	tables    []tables.Table

	aead cipher.AEAD // seals session cookies
}

// New returns the UI's handler over cfg.
func New(cfg Config) (http.Handler, error) {
	ui, err := NewUI(cfg)
	if err != nil {
		return nil, err
	}
	return ui.Handler(), nil
}

// NewUI builds the UI.
func NewUI(cfg Config) (*UI, error) {
	if cfg.Store == nil || cfg.KB == nil {
		return nil, errors.New("web: a store and an ATT&CK knowledge base are required")
	}
	wq, ok := cfg.Store.(store.WebQueries)
	if !ok {
		return nil, fmt.Errorf("web: the store (%T) does not implement store.WebQueries", cfg.Store)
	}
	if cfg.OnlineWindow <= 0 {
		cfg.OnlineWindow = time.Minute
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.OnError == nil {
		cfg.OnError = func(*http.Request, error) {}
	}
	aead, err := sessionAEAD(cfg.SessionKey)
	if err != nil {
		return nil, fmt.Errorf("web: session key: %w", err)
	}
	ui := &UI{cfg: cfg, wq: wq, mux: http.NewServeMux(), aead: aead}
	ui.tables = cfg.Tables
	if ui.tables == nil {
		ui.tables = DefaultTables(cfg.KB)
	}
	if err := ui.parseTemplates(); err != nil {
		return nil, err
	}
	ui.matrix = buildMatrix(cfg.KB)
	ui.matrixV19 = buildMatrixV19(cfg.KB)
	ui.cover = coverage(cfg.Rules)
	ui.routes()
	return ui, nil
}

// Handler returns the UI's HTTP handler.
func (ui *UI) Handler() http.Handler { return securityHeaders(ui.mux) }

func (ui *UI) routes() {
	static, _ := fs.Sub(staticFS, "static")
	ui.mux.Handle("GET /static/", http.StripPrefix("/static/", cacheStatic(noListing(http.FileServerFS(static)))))
	ui.mux.HandleFunc("GET /login", ui.handleLoginPage)
	ui.mux.HandleFunc("POST /login", ui.handleLogin)
	ui.mux.HandleFunc("POST /logout", ui.auth(ui.handleLogout))
	ui.mux.HandleFunc("GET /{$}", ui.auth(ui.handleOverview))
	ui.mux.HandleFunc("GET /matrix", ui.auth(ui.handleMatrix))
	ui.mux.HandleFunc("GET /matrix/layer.json", ui.auth(ui.handleLayer))
	ui.mux.HandleFunc("GET /techniques/{id}", ui.auth(ui.handleTechnique))
	ui.mux.HandleFunc("GET /detections", ui.auth(ui.handleDetections))
	ui.mux.HandleFunc("GET /detections/{id}", ui.auth(ui.handleDetection))
	ui.mux.HandleFunc("GET /incidents", ui.auth(ui.handleIncidents))
	ui.mux.HandleFunc("GET /incidents/{id}", ui.auth(ui.handleIncident))
	ui.mux.HandleFunc("GET /sandbox", ui.auth(ui.handleSandbox))
	ui.mux.HandleFunc("GET /sandbox/{host}/{run}", ui.auth(ui.handleSandboxRun))
	ui.mux.HandleFunc("GET /hosts", ui.auth(ui.handleHosts))
	ui.mux.HandleFunc("GET /hosts/{id}", ui.auth(ui.handleHost))
	ui.mux.HandleFunc("GET /intel", ui.auth(ui.handleIntelPage))
	ui.mux.HandleFunc("POST /intel", ui.auth(ui.handleIntelUpload))
	ui.mux.HandleFunc("POST /intel/{source}/delete", ui.auth(ui.handleIntelDelete))
	ui.mux.HandleFunc("GET /hunt", ui.auth(ui.handleHuntPage))
	ui.mux.HandleFunc("POST /hunt", ui.auth(ui.handleHuntCreate))
	ui.mux.HandleFunc("GET /hunts/{id}", ui.auth(ui.handleHuntView))
	ui.mux.HandleFunc("GET /hunts/{id}/data", ui.auth(ui.handleHuntData))
	ui.mux.HandleFunc("GET /hunts/{id}/export.csv", ui.auth(ui.handleHuntExportCSV))
	ui.mux.HandleFunc("GET /hunts/{id}/export.json", ui.auth(ui.handleHuntExportJSON))
}

// csp allows the UI's own scripts, styles and images only.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// noListing answers 404 for a directory (a path that is empty or ends in
// a slash) instead of the file server's listing of it.
func noListing(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func cacheStatic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=300")
		next.ServeHTTP(w, r)
	})
}

// page is what every page template gets.
type page struct {
	Title   string
	Nav     string
	CSRF    string
	Now     time.Time
	Data    any
	Flash   string
	Elapsed string
}

func (ui *UI) render(w http.ResponseWriter, r *http.Request, name, title string, data any) {
	t, ok := ui.pages[name]
	if !ok {
		ui.fail(w, r, fmt.Errorf("web: no template %q", name))
		return
	}
	p := page{Title: title, Nav: name, Now: ui.cfg.Now(), Data: data}
	if s := sessionFrom(r.Context()); s != nil {
		p.CSRF = s.csrf
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "layout", p); err != nil {
		ui.fail(w, r, fmt.Errorf("web: render %s: %w", name, err))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(b.String()))
}

// fail answers a 500 page (503 when the database is unavailable) and
// reports err.
func (ui *UI) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	ui.cfg.OnError(r, err)
	if store.Unavailable(err) {
		w.Header().Set("Retry-After", "10")
		http.Error(w, "database unavailable, try again in a moment", http.StatusServiceUnavailable)
		return
	}
	http.Error(w, "internal error", http.StatusInternalServerError)
}

// notFound answers a 404 page.
func (ui *UI) notFound(w http.ResponseWriter, r *http.Request, what string) {
	w.WriteHeader(http.StatusNotFound)
	ui.render(w, r, "notfound", "Not found", what)
}

func (ui *UI) parseTemplates() error {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return fmt.Errorf("web: templates: %w", err)
	}
	ui.pages = map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" || base == "partials" {
			continue
		}
		t, err := template.New(base).Funcs(funcs(ui)).ParseFS(templateFS, "templates/layout.html", "templates/partials.html", n)
		if err != nil {
			return fmt.Errorf("web: template %s: %w", n, err)
		}
		ui.pages[base] = t
	}
	return nil
}
