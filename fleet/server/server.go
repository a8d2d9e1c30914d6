// Package server is Quarry's fleet server: osquery's TLS remote API
// (enroll, config, log, distributed read/write) for osqueryd, Quarry's agent
// and Fleet-configured hosts, and the analyst API (hosts, detections,
// ATT&CK layers, live hunts, scheduled query results, packs) over one
// store.Store.
//
// The server keeps no state of its own beyond short-lived caches: hosts,
// logs, detections and hunts live in the store, so several servers on one
// PostgreSQL database serve the same fleet, and a host may reach any of
// them. It does not log; failures it cannot report to the client go to
// Config.OnError.
package server

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/fleet/osqwire"
	"github.com/quarry-sec/quarry/fleet/store"
)

// Defaults of Config.
const (
	DefaultMaxBodyBytes = 10 << 20
	// DefaultMaxEnrollBodyBytes bounds an enroll request (unauthenticated:
	// anyone who can reach the server may send one).
	DefaultMaxEnrollBodyBytes = 1 << 20
	// DefaultMaxBodyBytesInFlight bounds the osquery request bodies held at
	// once, read before the node key in them is checked.
	DefaultMaxBodyBytesInFlight = 64 << 20
	DefaultDistributedInterval  = 10 * time.Second
	DefaultHuntDeadline         = 5 * time.Minute
	MaxHuntDeadline             = 7 * 24 * time.Hour
	// DefaultHuntResend is how long a host has to answer a hunt handed to
	// it before the next distributed read hands it out again.
	DefaultHuntResend = 2 * time.Minute
)

// Config configures a Server.
type Config struct {
	// Store holds the fleet's data. Required.
	Store store.Store
	// KB is the ATT&CK knowledge base for detections and layers. Required.
	KB *attack.KB
	// EnrollSecret is what osquery hosts send to enroll. Required.
	EnrollSecret string
	// Version is reported by GET /version.
	Version string
	// FilePacks are packs read from files (LoadPacksDir), served besides
	// Quarry's detection pack and the packs added through the API.
	FilePacks map[string]Pack
	// NoDetectionPack leaves Quarry's detection pack out of the config.
	NoDetectionPack bool
	// Options are osquery options added to (or overriding) the defaults
	// the config carries (distributed_interval, logger_tls_period,
	// pack_delimiter).
	Options map[string]any
	// DistributedInterval is how often hosts are told to ask for live
	// queries; a host is online when seen within 3 intervals (at least
	// 60 s). Default 10 s.
	DistributedInterval time.Duration
	// MaxBodyBytes bounds a request body, compressed and decompressed
	// (413 beyond). Default 10 MiB.
	MaxBodyBytes int64
	// MaxEnrollBodyBytes bounds an enroll request's body. Default
	// DefaultMaxEnrollBodyBytes.
	MaxEnrollBodyBytes int64
	// MaxBodyBytesInFlight bounds the bytes of osquery request bodies
	// (enroll, config, log, distributed) held at once, decompressed: a
	// request that cannot get its share within 2 s is answered 503 with
	// Retry-After. Default DefaultMaxBodyBytesInFlight.
	MaxBodyBytesInFlight int64
	// HuntResend: see DefaultHuntResend.
	HuntResend time.Duration
	// NodeCacheTTL is how long the server trusts a node key it looked up
	// without asking the store again; it bounds how long a replaced key
	// (the host enrolled again through another replica) keeps working
	// here. Default DefaultNodeCacheTTL; negative: no cache.
	NodeCacheTTL time.Duration
	// NodeCacheSize bounds the node keys cached. Default
	// DefaultNodeCacheSize.
	NodeCacheSize int
	// SchemaRetry is how long a host that answered the schema probe (see
	// SchemaProbeID) with an error, or not at all, waits before it is
	// probed again. Default DefaultSchemaRetry.
	SchemaRetry time.Duration
	// Now replaces time.Now (tests).
	Now func() time.Time
	// OnError receives the failures answered with a 5xx status (r is
	// never nil). While the database is unavailable (store.Unavailable)
	// requests are answered 503 with Retry-After, and only the first
	// failure of the outage is reported here.
	OnError func(r *http.Request, err error)
	// OnBackgroundError receives failures outside any request (writing
	// hosts' last-seen times); during a database outage, none.
	OnBackgroundError func(err error)
	// OnRecovered is called when the database answers again after an
	// outage reported to OnError, with how long since that report.
	OnRecovered func(down time.Duration)
	// RetryAfter is the Retry-After of a 503 answer. Default
	// DistributedInterval, at least 5 s.
	RetryAfter time.Duration
}

// Server serves the osquery and analyst APIs. Create it with New.
type Server struct {
	cfg   Config
	mux   *http.ServeMux
	packs packCache

	touchMu        sync.Mutex
	touched        map[string]time.Time // host ID → last last-seen time this server queued
	pendingTouch   map[string]time.Time // last-seen times not yet written
	lastTouchFlush time.Time

	bodies *byteBudget // osquery request bodies in flight
	nodes  *nodeCache

	activeMu              sync.Mutex
	active                bool      // some hunt was active when last asked
	activeAt, activeUntil time.Time // when asked, and until when the answer holds
	activeKnown           bool      // the store answered at least once
	activeAsking          bool      // a request is asking the store now
	activeGen, askingGen  uint64    // bumped by huntCreated; activeGen when the asking request began

	outageMu  sync.Mutex
	down      atomic.Bool // the database is unavailable: reported once
	downSince time.Time

	schemaMu sync.Mutex
	schemas  map[string]schemaState // host ID → what this server knows of its schema report

	watchMu sync.Mutex
	watch   watchState // see Watch

	quietMu sync.Mutex
	quiet   map[string]takeQuiet // host ID → no hunt to take until (see huntQuiet)
}

// New returns a server over cfg.Store.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil || cfg.KB == nil {
		return nil, fmt.Errorf("fleet server: a store and an ATT&CK knowledge base are required")
	}
	if cfg.EnrollSecret == "" {
		return nil, fmt.Errorf("fleet server: an enroll secret is required")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxEnrollBodyBytes <= 0 {
		cfg.MaxEnrollBodyBytes = min(DefaultMaxEnrollBodyBytes, cfg.MaxBodyBytes)
	}
	if cfg.MaxBodyBytesInFlight <= 0 {
		cfg.MaxBodyBytesInFlight = DefaultMaxBodyBytesInFlight
	}
	if cfg.DistributedInterval <= 0 {
		cfg.DistributedInterval = DefaultDistributedInterval
	}
	if cfg.HuntResend <= 0 {
		cfg.HuntResend = DefaultHuntResend
	}
	if cfg.SchemaRetry <= 0 {
		cfg.SchemaRetry = DefaultSchemaRetry
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NodeCacheTTL == 0 {
		cfg.NodeCacheTTL = DefaultNodeCacheTTL
	}
	if cfg.NodeCacheSize <= 0 {
		cfg.NodeCacheSize = DefaultNodeCacheSize
	}
	if cfg.OnError == nil {
		cfg.OnError = func(*http.Request, error) {}
	}
	if cfg.OnBackgroundError == nil {
		cfg.OnBackgroundError = func(error) {}
	}
	if cfg.OnRecovered == nil {
		cfg.OnRecovered = func(time.Duration) {}
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = max(cfg.DistributedInterval, 5*time.Second)
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), touched: map[string]time.Time{},
		pendingTouch: map[string]time.Time{}, nodes: newNodeCache(cfg.NodeCacheTTL, cfg.NodeCacheSize),
		schemas: map[string]schemaState{}, bodies: newByteBudget(cfg.MaxBodyBytesInFlight)}
	s.routes()
	return s, nil
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

// osqueryPrefixes are where the osquery API is served: Quarry's path, and
// Fleet's for hosts configured for Fleet and Fleet's agent simulator.
var osqueryPrefixes = []string{"/api/v1/osquery/", "/api/osquery/"}

func (s *Server) routes() {
	for _, p := range osqueryPrefixes {
		s.mux.HandleFunc("POST "+p+"enroll", s.handleEnroll)
		s.mux.HandleFunc("POST "+p+"config", s.node(s.handleConfig))
		s.mux.HandleFunc("POST "+p+"log", s.node(s.handleLog))
		s.mux.HandleFunc("POST "+p+"distributed/read", s.node(s.handleDistributedRead))
		s.mux.HandleFunc("POST "+p+"distributed/write", s.node(s.handleDistributedWrite))
	}
	s.mux.HandleFunc("GET /version", s.handleVersion)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("GET /api/v1/hosts", s.analyst(s.handleHosts))
	s.mux.HandleFunc("GET /api/v1/detections", s.analyst(listHandler(s, "detections", s.detectionFilter, s.cfg.Store.Detections)))
	s.mux.HandleFunc("GET /api/v1/detections/summary", s.analyst(s.handleSummary))
	s.mux.HandleFunc("GET /api/v1/incidents", s.analyst(listHandler(s, "incidents", s.incidentFilter, s.cfg.Store.Incidents)))
	s.mux.HandleFunc("GET /api/v1/incidents/{id}", s.analyst(s.handleIncident))
	// a page of runs, newest first, without their trees
	s.mux.HandleFunc("GET /api/v1/sandbox/runs", s.analyst(listHandler(s, "runs", s.sandboxFilter, s.cfg.Store.SandboxRuns)))
	s.mux.HandleFunc("GET /api/v1/sandbox/runs/{host}/{run}", s.analyst(s.handleSandboxRun))
	s.mux.HandleFunc("GET /api/v1/attack/layer", s.analyst(s.handleLayer))
	s.mux.HandleFunc("POST /api/v1/hunts", s.analyst(s.handleCreateHunt))
	s.mux.HandleFunc("GET /api/v1/hunts/{id}", s.analyst(s.handleHunt))
	s.mux.HandleFunc("GET /api/v1/queries/{name}/results", s.analyst(s.handleQueryResults))
	s.mux.HandleFunc("GET /api/v1/tables", s.analyst(s.handleTables))
	s.mux.HandleFunc("GET /api/v1/tokens", s.analyst(s.handleTokens))
	s.mux.HandleFunc("DELETE /api/v1/tokens/{id}", s.analyst(s.handleRevokeToken))
	s.mux.HandleFunc("GET /api/v1/packs", s.analyst(s.handlePacks))
	s.mux.HandleFunc("PUT /api/v1/packs/{name}", s.analyst(s.handlePutPack))
	s.mux.HandleFunc("DELETE /api/v1/packs/{name}", s.analyst(s.handleDeletePack))
	s.mux.HandleFunc("GET /api/v1/intel", s.analyst(s.handleIntelSets))
	s.mux.HandleFunc("POST /api/v1/intel", s.analyst(s.handleIntelUpload))
	s.mux.HandleFunc("DELETE /api/v1/intel/{source}", s.analyst(s.handleIntelDelete))
	s.mux.HandleFunc("POST "+osqwire.PathIntel, s.node(s.handleIntelFetch))
}

func (s *Server) handleVersion(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"version": s.cfg.Version, "name": "quarry-fleet"})
}

// onlineWindow is how recently a host must have been seen to be online.
func (s *Server) onlineWindow() time.Duration {
	return max(3*s.cfg.DistributedInterval, 60*time.Second)
}
