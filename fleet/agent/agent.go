// Package agent is Quarry's fleet agent: an osquery-compatible client of the
// osquery TLS remote API that answers with Quarry's embedded engine. It
// enrolls with an enroll secret, pulls its config (schedule and packs), runs
// the scheduled queries and logs their differential results, answers live
// queries (hunts), and re-enrolls when the server says node_invalid. Result
// and status logs, and the answers to live queries, wait in a bounded disk
// queue while the server is unreachable and are sent once it is back, each
// once (an answer only while its hunt's deadline has not passed).
//
// The package logs nothing: failures reach Config.OnError and counts are in
// Stats, for the command to report.
package agent

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quarry-sec/quarry/detections/intel"
)

// Querier runs one read-only SQL statement: Quarry's embedded engine
// (extension/sqlengine.Engine) is one.
type Querier interface {
	Query(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Config configures an Agent. FleetURL, EnrollSecret, DataDir and Engine are
// required.
type Config struct {
	FleetURL       string // https://host:port (http:// only on loopback)
	EnrollSecret   string
	HostIdentifier string // default: the host name
	Platform       string // osquery platform_type; default runtime.GOOS
	Version        string // Quarry's version, reported at enrollment
	DataDir        string // the queue file lives in DataDir/agent
	Engine         Querier
	HTTPClient     *http.Client // default: NewHTTPClient(FleetURL, TLS)
	TLS            TLSOptions

	ConfigInterval      time.Duration // config refresh; default 60s
	DistributedInterval time.Duration // live query poll; default 10s
	LogInterval         time.Duration // log flush; default 4s
	QueryTimeout        time.Duration // per query; default 60s
	MaxRows             int           // per query result; default 100,000
	QueueBytes          int64         // disk queue bound; default DefaultQueueBytes

	// OnError receives failures the agent recovers from (server
	// unreachable, a query failing); it is called from the agent's
	// goroutines and must not block for long.
	OnError func(error)

	// ScheduleUnit is how long one "second" of a scheduled query's
	// interval lasts; default a second (tests shorten it).
	ScheduleUnit time.Duration

	// Intel, when set, receives the fleet's threat intelligence sets: at
	// each config refresh the agent fetches the sets that changed
	// (osqwire.PathIntel) and stores them as feeds (FleetOrigin) for the live
	// matcher and hunts of the data directory. IntelLinker (nil: none)
	// resolves their ATT&CK groups and software.
	Intel       *intel.DB
	IntelLinker *intel.Linker
}

// Stats counts what the agent did.
type Stats struct {
	Enrollments   int64 // successful enrollments, re-enrollments included
	ScheduledRuns int64 // scheduled query executions
	ResultLogs    int64 // result logs queued
	LogsSent      int64 // logs the server acknowledged
	SendFailures  int64 // log batches not acknowledged (kept queued)
	LiveQueries   int64 // live queries answered (queued for the server)
	// LiveDropped counts answers dropped unsent: past their hunt's
	// deadline when the server came back, or refused by it for good.
	LiveDropped int64
	Dropped     int64 // logs and answers the queue bound dropped (reported or not)
	// IntelChanges counts the fleet's intel sets loaded or removed.
	IntelChanges int64
}

// Agent is one enrolled host. Create it with New, run it with Run.
type Agent struct {
	cfg        Config
	client     *http.Client
	queue      *Queue
	instanceID string
	started    time.Time

	mu      sync.Mutex
	nodeKey string
	jobs    []job
	errs    map[string]string // last error per scheduled query, to log changes only
	// periods are the loops' intervals: Config's when set (fixed), else
	// the server's options (config_refresh, distributed_interval,
	// logger_tls_period), else defaults.
	periods, fixed periods
	delimiter      string // the config's pack_delimiter

	enrollMu sync.Mutex // one enrollment at a time
	answerMu sync.Mutex // one sender of queued live answers at a time

	enrollments, runs, resultLogs, sent, sendFailures, live, liveDropped, dropped, intelChanges atomic.Int64
}

// New opens the agent's queue and readies it to run.
func New(cfg Config) (*Agent, error) {
	if cfg.FleetURL == "" || cfg.Engine == nil || cfg.DataDir == "" {
		return nil, errors.New("agent: FleetURL, Engine and DataDir are required")
	}
	cfg.FleetURL = strings.TrimRight(cfg.FleetURL, "/")
	if cfg.HostIdentifier == "" {
		cfg.HostIdentifier = hostname()
	}
	if cfg.Platform == "" {
		cfg.Platform = runtime.GOOS
	}
	fixed := periods{config: cfg.ConfigInterval, distributed: cfg.DistributedInterval, log: cfg.LogInterval}
	setDefault(&cfg.ConfigInterval, 60*time.Second)
	setDefault(&cfg.DistributedInterval, 10*time.Second)
	setDefault(&cfg.LogInterval, 4*time.Second)
	setDefault(&cfg.QueryTimeout, 60*time.Second)
	setDefault(&cfg.ScheduleUnit, time.Second)
	if cfg.MaxRows <= 0 {
		cfg.MaxRows = 100_000
	}
	client := cfg.HTTPClient
	if client == nil {
		c, err := NewHTTPClient(cfg.FleetURL, cfg.TLS)
		if err != nil {
			return nil, err
		}
		client = c
	}
	q, err := OpenQueue(QueuePath(cfg.DataDir), cfg.QueueBytes)
	if err != nil {
		return nil, err
	}
	id := make([]byte, 16)
	_, _ = rand.Read(id) // crypto/rand never fails on supported platforms
	return &Agent{cfg: cfg, client: client, queue: q, instanceID: hex.EncodeToString(id),
		started: time.Now(), errs: map[string]string{}, fixed: fixed, delimiter: PackDelimiter,
		periods: periods{config: cfg.ConfigInterval, distributed: cfg.DistributedInterval, log: cfg.LogInterval}}, nil
}

// QueuePath is where an agent with data directory dir keeps its queue.
func QueuePath(dir string) string { return filepath.Join(dir, "agent", "queue.db") }

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

// Queue returns the agent's disk queue.
func (a *Agent) Queue() *Queue { return a.queue }

// HostIdentifier is the host_identifier the agent enrolls with.
func (a *Agent) HostIdentifier() string { return a.cfg.HostIdentifier }

// Stats returns the agent's counters.
func (a *Agent) Stats() Stats {
	return Stats{
		Enrollments: a.enrollments.Load(), ScheduledRuns: a.runs.Load(), ResultLogs: a.resultLogs.Load(),
		LogsSent: a.sent.Load(), SendFailures: a.sendFailures.Load(), LiveQueries: a.live.Load(),
		LiveDropped: a.liveDropped.Load(), Dropped: a.dropped.Load(), IntelChanges: a.intelChanges.Load(),
	}
}

// Run enrolls (retrying until the server accepts), then pulls config, runs
// the schedule, answers live queries and sends logs until ctx ends. On the
// way out it tries, for a few seconds, to send what is queued, then closes
// the queue: what is not sent stays on disk for the next run.
func (a *Agent) Run(ctx context.Context) error {
	defer a.queue.Close()
	if err := a.restoreConfig(ctx); err != nil {
		a.report(err)
	}
	if err := a.enrollUntil(ctx); err != nil {
		return a.shutdown(err)
	}
	if err := a.refreshConfig(ctx); err != nil {
		a.report(err)
	}
	a.refreshIntel(ctx)
	var wg sync.WaitGroup
	loops := []func(context.Context){a.configLoop, a.scheduleLoop, a.distributedLoop, a.logLoop}
	for _, loop := range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			loop(ctx)
		}()
	}
	wg.Wait()
	return a.shutdown(nil)
}

// shutdown sends what it can in a few seconds once ctx is done.
func (a *Agent) shutdown(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		err = nil
	}
	a.mu.Lock()
	enrolled := a.nodeKey != ""
	a.mu.Unlock()
	if enrolled {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if ferr := a.Flush(ctx); ferr != nil && err == nil {
			a.report(fmt.Errorf("final flush (logs stay queued): %w", ferr))
		}
	}
	return err
}

// periods are the intervals of the config, live query and log loops.
type periods struct {
	config, distributed, log time.Duration
}

func (a *Agent) period(pick func(periods) time.Duration) func() time.Duration {
	return func() time.Duration {
		a.mu.Lock()
		defer a.mu.Unlock()
		return pick(a.periods)
	}
}

// every runs fn every d() (read again after each run) until ctx ends.
func every(ctx context.Context, d func() time.Duration, fn func(context.Context)) {
	t := time.NewTimer(d())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn(ctx)
			t.Reset(d())
		}
	}
}

func (a *Agent) report(err error) {
	if err != nil && a.cfg.OnError != nil {
		a.cfg.OnError(err)
	}
}
