package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/quarry-sec/quarry/detections/packs"
	"github.com/quarry-sec/quarry/fleet/agent"
	"github.com/quarry-sec/quarry/fleet/analyst"
	"github.com/quarry-sec/quarry/fleet/osqwire"
	"github.com/quarry-sec/quarry/internal/benchload"
	"github.com/quarry-sec/quarry/internal/interrupt"
)

// Bounds of `quarry-bench fleet`.
const (
	benchMaxHosts    = 50_000
	benchMaxDuration = time.Hour
	benchMaxReplicas = 8
)

type benchFleetOptions struct {
	hosts              int
	interval, duration time.Duration
	ramp               time.Duration // hosts enroll at random points of the first ramp (default: interval)
	fleet, postgres    string
	secretFile, token  string
	serverPprof        string
	quarry             string // the quarry binary that serves
	replicas           int
	hitsPerLog         int
	keep               bool
	cpuProfile         string // the bench's own CPU profile
}

// fleetBench runs the fleet load test; log takes progress lines.
type fleetBench struct{ log zerolog.Logger }

func fleetCommand(log zerolog.Logger) *cobra.Command {
	var o benchFleetOptions
	cmd := &cobra.Command{
		Use:   "fleet --hosts N [--interval 10s] [--duration 60s] [--fleet URL | --postgres DSN [--replicas N]]",
		Short: "Simulate osquery hosts against a fleet server on loopback and report its throughput",
		Long: `Simulate N osquery hosts on 127.0.0.1: each enrolls, pulls its config, then every
interval asks for live queries (answering any) and sends a result log of IoA hits
(the detection pack's ` + packs.QueryHits + ` query, unique hit ids). Reports requests/s,
p50/p99 latency, rows sent and ingested (lost must be 0), a live hunt across every
host (time until 99% answered) and, when the bench starts the server itself (a child
'quarry fleet serve' on SQLite in a temporary directory, or --postgres), the server's
CPU time and RSS from /proc. --replicas N (with --postgres) starts N servers on the
one database behind HAProxy when haproxy is installed, else the simulated hosts
spread over the replicas round robin. --fleet points at a running server instead
(loopback only; give --enroll-secret-file and --token or $QUARRY_TOKEN).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := interrupt.Context(context.Background())
			defer stop()
			return (&fleetBench{log: log}).run(ctx, o, cmd.OutOrStdout())
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&o.hosts, "hosts", 1000, "simulated hosts (at most 50,000)")
	fl.DurationVar(&o.interval, "interval", 10*time.Second, "each host's check-in interval")
	fl.DurationVar(&o.duration, "duration", 60*time.Second, "how long to run (at most 1h)")
	fl.DurationVar(&o.ramp, "ramp", 0, "hosts enroll at random points of this first stretch of the run (default: the first interval)")
	fl.StringVar(&o.fleet, "fleet", "", "a running fleet server on loopback (default: start one)")
	fl.StringVar(&o.postgres, "postgres", "", "the started server stores in PostgreSQL at this DSN instead of SQLite")
	fl.IntVar(&o.replicas, "replicas", 1, "servers started on the one --postgres database (at most 8)")
	fl.StringVar(&o.quarry, "quarry", "", "the quarry binary to start (default: quarry beside this binary, else on $PATH)")
	fl.StringVar(&o.secretFile, "enroll-secret-file", "", "enroll secret of the --fleet server")
	fl.StringVar(&o.token, "token", "", "analyst token of the --fleet server (default $QUARRY_TOKEN)")
	fl.IntVar(&o.hitsPerLog, "hits-per-log", 1, "IoA hit rows in each result log")
	fl.BoolVar(&o.keep, "keep", false, "keep the started server's data directory")
	fl.StringVar(&o.cpuProfile, "cpuprofile", "", "write the bench's own CPU profile (the load generator, not the server) to this file")
	fl.StringVar(&o.serverPprof, "server-pprof", "", "the (first) started server serves Go's profiling endpoints on this loopback address (fleet serve --pprof)")
	return cmd
}

// benchTarget is the server under test: one or several replicas, maybe
// behind HAProxy.
type benchTarget struct {
	url, secret string
	api         *analyst.Client
	hostURLs    []string       // the simulated hosts talk to these, round robin by host
	children    []*benchServer // none for --fleet
	lb          *exec.Cmd      // HAProxy, when it fronts the replicas
	dir         string         // the started servers' directory
}

func (a *fleetBench) run(ctx context.Context, o benchFleetOptions, out io.Writer) error {
	switch {
	case o.hosts < 1 || o.hosts > benchMaxHosts:
		return usageError{fmt.Errorf("--hosts %d: want 1..%d", o.hosts, benchMaxHosts)}
	case o.interval < time.Second || o.interval > 10*time.Minute:
		return usageError{errors.New("--interval: want 1s..10m")}
	case o.duration < o.interval || o.duration > benchMaxDuration:
		return usageError{fmt.Errorf("--duration: want --interval..%s", benchMaxDuration)}
	case o.ramp < 0 || o.ramp >= o.duration:
		return usageError{errors.New("--ramp: want 0 (one interval) up to less than --duration")}
	case o.hitsPerLog < 0 || o.hitsPerLog > 1000:
		return usageError{errors.New("--hits-per-log: want 0..1000")}
	case o.replicas < 1 || o.replicas > benchMaxReplicas:
		return usageError{fmt.Errorf("--replicas %d: want 1..%d", o.replicas, benchMaxReplicas)}
	case o.replicas > 1 && (o.postgres == "" || o.fleet != ""):
		return usageError{errors.New("--replicas needs --postgres (replicas share one database) and no --fleet")}
	}
	t, err := a.target(ctx, o)
	if err != nil {
		return err
	}
	defer t.stop(o.keep, a.log)
	before, err := t.counts(ctx)
	if err != nil {
		return err
	}
	if o.ramp == 0 {
		o.ramp = o.interval
	}
	maxConns := 0
	if t.lb != nil {
		maxConns = haproxyHostConns
	}
	sim := newFleetSim(t.hostURLs, t.secret, o, maxConns)
	runCtx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	var rss rssSampler
	if pids := t.pids(); len(pids) > 0 {
		go rss.run(runCtx, pids)
	}
	cpu0, self0 := t.cpu(), selfCPU()
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return fmt.Errorf("bench fleet: --cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("bench fleet: --cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	hunt := make(chan huntTiming, 1)
	go func() { hunt <- sim.timeHunt(runCtx, t.api) }()
	a.log.Info().Int("hosts", o.hosts).Dur("interval", o.interval).Dur("duration", o.duration).Str("fleet", t.url).Msg("bench running")
	start := time.Now()
	sim.start = start
	sim.run(runCtx)
	wall := time.Since(start)
	cpu, self := t.cpu()-cpu0, selfCPU()-self0
	ht := <-hunt
	after, err := t.counts(context.WithoutCancel(ctx))
	if err != nil {
		return err
	}
	r := sim.report()
	fmt.Fprintf(out, "quarry-bench fleet: %d hosts, interval %s, %s, server %s\n", o.hosts, o.interval, wall.Round(time.Millisecond), t.describe(o))
	fmt.Fprintf(out, "requests    %d (%.0f/s): enroll %d, config %d, distributed read %d, write %d, log %d; failed %d\n",
		r.total, float64(r.total)/wall.Seconds(), r.byKind[reqEnroll], r.byKind[reqConfig], r.byKind[reqRead],
		r.byKind[reqWrite], r.byKind[reqLog], r.failed)
	fmt.Fprintf(out, "latency     p50 %s, p99 %s, max %s (all requests)\n", r.p50, r.p99, r.max)
	if r.enrollPhase > 0 {
		fmt.Fprintf(out, "  phases    enrollment (until every host enrolled, %s; ramp %s): %d requests, p50 %s, p99 %s; after: %d requests, p50 %s, p99 %s\n",
			r.enrollPhase.Round(10*time.Millisecond), o.ramp, r.phase[0].n, r.phase[0].p50, r.phase[0].p99, r.phase[1].n, r.phase[1].p50, r.phase[1].p99)
	} else {
		fmt.Fprintf(out, "  phases    not every host enrolled before the end of the run\n")
	}
	var kinds []string
	for k := range reqKinds {
		if r.byKind[k] > 0 {
			kinds = append(kinds, fmt.Sprintf("%s %s/%s", reqNames[k], r.kindP50[k], r.kindP99[k]))
		}
	}
	fmt.Fprintf(out, "  by kind   p50/p99: %s\n", strings.Join(kinds, ", "))
	if len(r.errs) > 0 {
		fmt.Fprintf(out, "  failures  %s\n", strings.Join(r.errs, "; "))
	}
	if len(t.children) > 0 {
		fmt.Fprintf(out, "server      CPU %.1f s (%.2f cores), RSS %.0f MiB at the end, peak %.0f MiB (summed over replicas)\n",
			cpu, cpu/wall.Seconds(), float64(rss.last.Load())/(1<<20), float64(rss.peak.Load())/(1<<20))
	}
	fmt.Fprintf(out, "bench       CPU %.1f s (%.2f cores): the simulated hosts, on the same machine\n", self, self/wall.Seconds())
	ingested, dets := after.results-before.results, after.detections-before.detections
	lost := r.rowsAcked - ingested
	fmt.Fprintf(out, "rows        sent %d (acknowledged), ingested %d result rows, %d detections; lost %d\n",
		r.rowsAcked, ingested, dets, max(lost, 0))
	fmt.Fprintf(out, "live hunt   %s\n", ht)
	// A log can be stored and its answer lost (the client timed out, or a
	// balancer failed it after the server answered): ingested then exceeds
	// acknowledged, and nothing is lost. An acknowledged row not ingested
	// is lost.
	if lost > 0 || dets != ingested {
		return fmt.Errorf("bench fleet: %d rows acknowledged, %d ingested, %d detections", r.rowsAcked, ingested, dets)
	}
	return nil
}

// target starts the servers, or checks the one given.
func (a *fleetBench) target(ctx context.Context, o benchFleetOptions) (_ *benchTarget, err error) {
	t := &benchTarget{}
	if o.fleet != "" {
		u, err := url.Parse(o.fleet)
		if err != nil || !agent.IsLoopback(u.Hostname()) {
			return nil, usageError{fmt.Errorf("--fleet %s: the bench runs against loopback (127.0.0.1) only", o.fleet)}
		}
		if o.secretFile == "" {
			return nil, usageError{errors.New("--fleet needs --enroll-secret-file")}
		}
		secret, err := agent.ReadEnrollSecret(o.secretFile)
		if err != nil {
			return nil, err
		}
		token := o.token
		if token == "" {
			token = os.Getenv("QUARRY_TOKEN")
		}
		if token == "" {
			return nil, usageError{errors.New("--fleet needs --token or $QUARRY_TOKEN (for the hunt and the ingested counts)")}
		}
		t.url, t.secret = strings.TrimRight(o.fleet, "/"), secret
		t.hostURLs = []string{t.url}
		hc, err := agent.NewHTTPClient(t.url, agent.TLSOptions{Insecure: true})
		if err != nil {
			return nil, err
		}
		t.api = &analyst.Client{Base: t.url, Token: token, HTTP: hc}
		return t, nil
	}
	exe, err := quarryBinary(o.quarry)
	if err != nil {
		return nil, err
	}
	if t.dir, err = os.MkdirTemp("", "quarry-bench-fleet-"); err != nil {
		return nil, fmt.Errorf("bench fleet: %w", err)
	}
	defer func() {
		if err != nil {
			t.stop(false, a.log)
		}
	}()
	t.secret = "bench-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	secretFile := filepath.Join(t.dir, "enroll-secret")
	if err := os.WriteFile(secretFile, []byte(t.secret), 0o600); err != nil {
		return nil, fmt.Errorf("bench fleet: %w", err)
	}
	for i := range o.replicas {
		pprof := ""
		if i == 0 {
			pprof = o.serverPprof
		}
		child, err := startBenchServer(ctx, exe, o, filepath.Join(t.dir, fmt.Sprintf("replica-%d", i+1)), secretFile, pprof)
		if child != nil {
			t.children = append(t.children, child)
		}
		if err != nil {
			return nil, err
		}
		t.hostURLs = append(t.hostURLs, child.url)
	}
	t.url = t.hostURLs[0]
	if o.replicas > 1 {
		if haproxy, err := exec.LookPath("haproxy"); err == nil {
			if t.url, err = t.startHAProxy(ctx, haproxy); err != nil {
				return nil, err
			}
			t.hostURLs = []string{t.url}
		} else {
			a.log.Info().Msg("haproxy not found: the simulated hosts spread over the replicas round robin")
		}
	}
	token, err := benchToken(ctx, exe, o, t.children[0].dir)
	if err != nil {
		return nil, err
	}
	hc, err := agent.NewHTTPClient(t.url, agent.TLSOptions{})
	if err != nil {
		return nil, err
	}
	t.api = &analyst.Client{Base: t.url, Token: token, HTTP: hc}
	return t, nil
}

// quarryBinary is the quarry binary that serves: the one given, else
// quarry beside this binary, else quarry on $PATH.
func quarryBinary(given string) (string, error) {
	if given != "" {
		return given, nil
	}
	if self, err := os.Executable(); err == nil {
		beside := filepath.Join(filepath.Dir(self), "quarry")
		if fi, err := os.Stat(beside); err == nil && !fi.IsDir() {
			return beside, nil
		}
	}
	p, err := exec.LookPath("quarry")
	if err != nil {
		return "", usageError{errors.New("no quarry binary beside quarry-bench or on $PATH: build it (go build ./cmd/quarry) or give --quarry PATH")}
	}
	return p, nil
}

// haproxyConfig fronts the replicas as deploy/haproxy.cfg does (round
// robin, health checks that wait 5 s for an answer, retries on a failed
// connection). Health checks timed out after their 500 ms interval
// before: at 10,000 hosts both replicas answered /healthz slower than
// that, were marked DOWN together, and HAProxy answered 503 "No server
// is available" (6,695 and 8,984 of the requests in two runs); at a load
// of 25 checks took over 5 s too, so the replicas are also backups of
// themselves, unchecked: when all fail their checks, HAProxy still sends
// them requests (fail open) instead of answering 503. Idle client
// connections are kept longer than the bench client's (90 s): with
// HAProxy's default (timeout http-request, 10 s) a host reusing its
// connection every 10 s raced the close and read EOF (111 of 27,258
// requests at 2,000 hosts).
// maxconn stays within the usual limit of open files (20,000 here: HAProxy
// wants about twice maxconn), and the simulated hosts share at most
// haproxyHostConns connections to it: past maxconn, a new connection
// waits unaccepted until another closes (requests timed out at 60 s).
const haproxyConfig = `global
    maxconn 8000
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout http-request 10s
    timeout http-keep-alive 120s
    timeout check 5s
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response
frontend fleet
    bind %s
    default_backend fleet
backend fleet
    balance roundrobin
    option httpchk GET /healthz
    option allbackups
%s`

// haproxyHostConns bounds the simulated hosts' connections to HAProxy,
// below its maxconn (the analyst API's client and the checks need some).
const haproxyHostConns = 7500

// startHAProxy starts HAProxy in front of the replicas on a free loopback
// port and returns its URL.
func (t *benchTarget) startHAProxy(ctx context.Context, haproxy string) (string, error) {
	port, err := freeLoopbackPort()
	if err != nil {
		return "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	var servers strings.Builder
	for i, c := range t.children {
		fmt.Fprintf(&servers, "    server fleet%d %s check inter 1s fall 3 rise 2\n", i+1, strings.TrimPrefix(c.url, "http://"))
	}
	for i, c := range t.children {
		fmt.Fprintf(&servers, "    server fleet%d-open %s backup no-check\n", i+1, strings.TrimPrefix(c.url, "http://"))
	}
	cfg := filepath.Join(t.dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(haproxyConfig, addr, servers.String())), 0o600); err != nil {
		return "", fmt.Errorf("bench fleet: %w", err)
	}
	logf, err := os.Create(filepath.Join(t.dir, "haproxy.log"))
	if err != nil {
		return "", fmt.Errorf("bench fleet: %w", err)
	}
	defer logf.Close()
	t.lb = exec.Command(haproxy, "-db", "-f", cfg)
	t.lb.Stdout, t.lb.Stderr = logf, logf
	if err := t.lb.Start(); err != nil {
		t.lb = nil
		return "", fmt.Errorf("bench fleet: start haproxy: %w", err)
	}
	u := "http://" + addr
	if err := waitHealthy(ctx, u, 30*time.Second); err != nil {
		out, _ := os.ReadFile(logf.Name())
		return "", fmt.Errorf("bench fleet: haproxy: %w\n%s", err, strings.TrimSpace(string(out)))
	}
	return u, nil
}

// stop ends HAProxy and the servers and removes their directory unless
// keep.
func (t *benchTarget) stop(keep bool, log zerolog.Logger) {
	if t.lb != nil {
		stopProcess(t.lb)
	}
	for _, c := range t.children {
		stopProcess(c.cmd)
	}
	if t.dir == "" {
		return
	}
	if keep {
		log.Info().Str("dir", t.dir).Msg("server data kept")
		return
	}
	os.RemoveAll(t.dir)
}

func (t *benchTarget) describe(o benchFleetOptions) string {
	if len(t.children) == 0 {
		return t.url
	}
	store := "SQLite"
	if o.postgres != "" {
		store = "PostgreSQL"
	}
	var pids []string
	for _, p := range t.pids() {
		pids = append(pids, strconv.Itoa(p))
	}
	front := ""
	switch {
	case t.lb != nil:
		front = fmt.Sprintf(", %d replicas behind HAProxy", len(t.children))
	case len(t.children) > 1:
		front = fmt.Sprintf(", %d replicas, hosts round robin", len(t.children))
	}
	return fmt.Sprintf("%s (child pid %s, %s%s, %s)", t.url, strings.Join(pids, ","), store, front, t.dir)
}

func (t *benchTarget) pids() []int {
	var out []int
	for _, c := range t.children {
		out = append(out, c.pid)
	}
	return out
}

// cpu is the servers' user+system CPU seconds.
func (t *benchTarget) cpu() float64 {
	var sum float64
	for _, c := range t.children {
		sum += c.cpu()
	}
	return sum
}

// benchCounts are the server's totals the bench compares.
type benchCounts struct{ results, detections int64 }

func (t *benchTarget) counts(ctx context.Context) (benchCounts, error) {
	var c benchCounts
	var page struct {
		Total int64 `json:"total"`
	}
	if err := t.api.Do(ctx, http.MethodGet, "/api/v1/queries/"+packs.QueryHits+"/results?limit=1", nil, &page); err != nil {
		return c, err
	}
	c.results = page.Total
	if err := t.api.Do(ctx, http.MethodGet, "/api/v1/detections?limit=1", nil, &page); err != nil {
		return c, err
	}
	c.detections = page.Total
	return c, nil
}

// benchServer is a `quarry fleet serve` child on a loopback port.
type benchServer struct {
	cmd      *exec.Cmd
	pid      int
	dir, url string
}

// storeArgs are the flags that point quarry at the bench's store.
func storeArgs(o benchFleetOptions) []string {
	if o.postgres != "" {
		return []string{"--postgres", o.postgres}
	}
	return nil
}

// benchEnv is the environment of the children: the store is the one the
// flags name, not one from $QUARRY_FLEET_POSTGRES.
func benchEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "QUARRY_FLEET_POSTGRES=") })
}

// startBenchServer starts exe's `fleet serve` with data directory dir on
// a free loopback port and waits for /healthz. On failure the returned
// server (if any) still needs stopping.
func startBenchServer(ctx context.Context, exe string, o benchFleetOptions, dir, secretFile, pprof string) (*benchServer, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("bench fleet: %w", err)
	}
	s := &benchServer{dir: dir}
	port, err := freeLoopbackPort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	s.url = "http://" + addr
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return nil, fmt.Errorf("bench fleet: %w", err)
	}
	defer logf.Close()
	args := append([]string{"--data-dir", dir, "fleet", "serve", "--addr", addr, "--enroll-secret-file", secretFile,
		"--distributed-interval", o.interval.String()}, storeArgs(o)...)
	if pprof != "" {
		args = append(args, "--pprof", pprof)
	}
	s.cmd = exec.Command(exe, args...)
	s.cmd.Env, s.cmd.Stdout, s.cmd.Stderr = benchEnv(), logf, logf
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench fleet: start server: %w", err)
	}
	s.pid = s.cmd.Process.Pid
	if err := waitHealthy(ctx, s.url, 30*time.Second); err != nil {
		return s, fmt.Errorf("bench fleet: server (log in %s): %w", logf.Name(), err)
	}
	return s, nil
}

// benchToken makes an analyst token in the store of the server with data
// directory dir.
func benchToken(ctx context.Context, exe string, o benchFleetOptions, dir string) (string, error) {
	tok := exec.CommandContext(ctx, exe, append([]string{"--data-dir", dir, "fleet", "token", "create", "--name", "bench"}, storeArgs(o)...)...)
	tok.Env = benchEnv()
	outb, err := tok.Output()
	if err != nil {
		return "", fmt.Errorf("bench fleet: token: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(outb)), "\n")
	return strings.TrimSpace(lines[len(lines)-1]), nil
}

func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("bench fleet: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitHealthy(ctx context.Context, base string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("not healthy within %s: %v", within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stopProcess ends a child: SIGTERM, then SIGKILL after 15 s.
func stopProcess(cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// clockTicks is Linux's USER_HZ, the unit of /proc/PID/stat times.
const clockTicks = 100

// cpu is the child's user+system CPU seconds (0 without a child).
func (s *benchServer) cpu() float64 {
	if s == nil {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces): state is 3,
	// utime 14, stime 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / clockTicks
}

// selfCPU is this process's user+system CPU seconds.
func selfCPU() float64 { return benchload.CPUTime().Seconds() }

// rssSampler follows the resident set size of processes, summed.
type rssSampler struct{ last, peak atomic.Int64 }

func (r *rssSampler) run(ctx context.Context, pids []int) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		var v int64
		for _, pid := range pids {
			v += readRSS(pid)
		}
		if v > 0 {
			r.last.Store(v)
			if v > r.peak.Load() {
				r.peak.Store(v)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// readRSS is VmRSS of /proc/PID/status in bytes.
func readRSS(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// Request kinds of the simulation.
const (
	reqEnroll = iota
	reqConfig
	reqRead
	reqWrite
	reqLog
	reqKinds
)

// fleetSim is N simulated osquery hosts.
type fleetSim struct {
	urls   []string // host i talks to urls[i % len(urls)]
	secret string
	o      benchFleetOptions
	client *http.Client

	enrolled  atomic.Int64
	failed    atomic.Int64
	rowsAcked atomic.Int64
	byKind    [reqKinds]atomic.Int64

	start       time.Time    // the run's start
	allEnrolled atomic.Int64 // when the last host enrolled, since start (0: not yet)

	mu        sync.Mutex
	latencies [reqKinds][]sample
	errs      map[string]int // failures by kind and error, shortened
}

// sample is one request: when it was sent (since the run's start) and
// how long its answer took.
type sample struct{ at, took time.Duration }

// newFleetSim makes the hosts; maxConns > 0 bounds their connections.
func newFleetSim(urls []string, secret string, o benchFleetOptions, maxConns int) *fleetSim {
	// Every host may keep a connection, as an osquery host keeps its own:
	// with fewer idle connections kept than requests in flight (1,024
	// before), each request past that closed its connection when done and
	// the next dialed anew, and connecting took 31% of the bench's CPU and
	// the server's accepts at 10,000 hosts, the more so the slower the
	// server answered.
	tr := &http.Transport{
		Proxy:               nil,
		MaxIdleConns:        o.hosts,
		MaxIdleConnsPerHost: o.hosts,
		MaxConnsPerHost:     maxConns,
		IdleConnTimeout:     90 * time.Second,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
	}
	return &fleetSim{urls: urls, secret: secret, o: o, client: &http.Client{Transport: tr, Timeout: 60 * time.Second}}
}

// run drives every host until ctx ends; requests in flight then finish.
func (s *fleetSim) run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := range s.o.hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.host(ctx, i)
		}()
	}
	wg.Wait()
}

// host is one simulated osquery host: enroll and config at a random point
// of the first interval, then a distributed read and a result log every
// interval.
func (s *fleetSim) host(ctx context.Context, i int) {
	ident := fmt.Sprintf("bench-host-%05d", i)
	base := s.urls[i%len(s.urls)]
	var lat [reqKinds][]sample
	defer func() {
		s.mu.Lock()
		for k := range lat {
			s.latencies[k] = append(s.latencies[k], lat[k]...)
		}
		s.mu.Unlock()
	}()
	call := func(kind int, path string, body, out any) error {
		start := time.Now()
		// In-flight requests are not cut short by the end of the run, so
		// every acknowledged row is counted.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
		defer cancel()
		err := benchPost(rctx, s.client, base+path, body, out)
		lat[kind] = append(lat[kind], sample{at: start.Sub(s.start), took: time.Since(start)})
		s.byKind[kind].Add(1)
		if err != nil {
			s.failed.Add(1)
			s.noteError(kind, err)
		}
		return err
	}
	wait := func(d time.Duration) bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(d):
			return true
		}
	}
	if !wait(time.Duration(rand.Int64N(int64(s.o.ramp)))) {
		return
	}
	var key string
	enroll := func() bool {
		var er osqwire.EnrollResponse
		err := call(reqEnroll, osqwire.PathEnroll, osqwire.EnrollRequest{EnrollSecret: s.secret, HostIdentifier: ident,
			PlatformType: "9", HostDetails: map[string]osqwire.Details{
				"os_version":   {"name": "Ubuntu", "version": "24.04", "platform": "ubuntu"},
				"osquery_info": {"version": "5.12.1"},
				"system_info":  {"hostname": ident},
			}}, &er)
		key = er.NodeKey
		return err == nil && key != ""
	}
	for !enroll() {
		if !wait(s.o.interval) {
			return
		}
	}
	if s.enrolled.Add(1) == int64(s.o.hosts) {
		s.allEnrolled.Store(int64(time.Since(s.start)))
	}
	// The body of config and distributed read requests is the same every
	// time: encoded once.
	nodeBody, _ := json.Marshal(osqwire.NodeRequest{NodeKey: key})
	_ = call(reqConfig, osqwire.PathConfig, json.RawMessage(nodeBody), nil)
	seq := 0
	for {
		var read osqwire.DistributedReadResponse
		if err := call(reqRead, osqwire.PathDistributedRead, json.RawMessage(nodeBody), &read); err == nil && len(read.Queries) > 0 {
			w := osqwire.DistributedWriteRequest[[]map[string]string]{NodeKey: key, Queries: map[string][]map[string]string{},
				Statuses: map[string]osqwire.Int{}}
			for id := range read.Queries {
				w.Queries[id] = []map[string]string{{"one": "1", "host": ident}}
				w.Statuses[id] = 0
			}
			_ = call(reqWrite, osqwire.PathDistWrite, w, nil)
		}
		if s.o.hitsPerLog > 0 {
			now := time.Now()
			rows := make([]map[string]string, s.o.hitsPerLog)
			for j := range rows {
				seq++
				rows[j] = map[string]string{"hit_id": fmt.Sprintf("%s-%d", ident, seq), "time": strconv.FormatInt(now.Unix(), 10),
					"host_identifier": ident, "rule_id": "bench-rule", "rule_title": "Bench rule", "rule_author": "quarry bench",
					"rule_source": "builtin", "technique_id": "T1059.004", "technique_name": "Unix Shell", "tactic": "execution",
					"severity": "high", "confidence": "medium", "description": "simulated", "recommendations": "none",
					"eid": strconv.Itoa(seq), "pid": strconv.Itoa(1000 + seq), "path": "/bin/sh", "cmdline": "sh -c bench",
					"parent_path": "/bin/bash", "username": "bench", "source": "ebpf"}
			}
			l, _ := json.Marshal(osqwire.ResultLog[map[string]string]{Name: agent.PackQueryName(packs.Name, packs.QueryHits),
				HostIdentifier: ident, CalendarTime: osqwire.CalendarTime(now.Unix()), UnixTime: osqwire.Int(now.Unix()),
				Counter: osqwire.Int(seq), DiffResults: &osqwire.DiffResults[map[string]string]{Added: rows, Removed: []map[string]string{}}})
			err := call(reqLog, osqwire.PathLog, osqwire.LogRequest{NodeKey: key, LogType: osqwire.LogResult, Data: []json.RawMessage{l}}, nil)
			if err == nil {
				s.rowsAcked.Add(int64(len(rows)))
			}
		}
		if !wait(s.o.interval) {
			return
		}
	}
}

// benchPost posts JSON and reads the answer; non-200 is an error.
func benchPost(ctx context.Context, c *http.Client, u string, body, out any) error {
	b, ok := body.(json.RawMessage) // encoded already
	if !ok {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return err
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d %s", u, resp.StatusCode, answerSummary(data))
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// answerSummary is the start of an error answer's body on one line, so
// that failures name their origin: the server's JSON error ("server
// busy", "database unavailable") or HAProxy's page ("No server is
// available to handle this request").
func answerSummary(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	s := strings.Join(strings.Fields(string(body)), " ")
	if i := strings.Index(s, "</h1>"); i >= 0 { // HAProxy's page: the line after its heading
		s = strings.TrimSpace(strings.TrimSuffix(s[i+len("</h1>"):], "</body></html>"))
	}
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}

// huntTiming is how long a hunt across every host took to be answered.
type huntTiming struct {
	err            error
	hosts          int
	p99, all       time.Duration
	answered       int
	reached, total bool
}

func (h huntTiming) String() string {
	if h.err != nil {
		return "failed: " + h.err.Error()
	}
	s := fmt.Sprintf("%d hosts: ", h.hosts)
	if h.reached {
		s += fmt.Sprintf("99%% answered in %s", h.p99.Round(10*time.Millisecond))
	} else {
		s += fmt.Sprintf("99%% not reached before the end of the run (%d answered)", h.answered)
	}
	if h.total {
		s += fmt.Sprintf(", all in %s", h.all.Round(10*time.Millisecond))
	}
	return s
}

// timeHunt waits until every host enrolled, posts a hunt to all hosts and
// polls it until every host answered or ctx ends.
func (s *fleetSim) timeHunt(ctx context.Context, api *analyst.Client) huntTiming {
	for s.enrolled.Load() < int64(s.o.hosts) {
		select {
		case <-ctx.Done():
			return huntTiming{err: errors.New("not every host enrolled before the end of the run")}
		case <-time.After(100 * time.Millisecond):
		}
	}
	var v analyst.Hunt
	deadline := max(5*s.o.interval, time.Minute)
	start := time.Now()
	if err := api.Do(ctx, http.MethodPost, "/api/v1/hunts", map[string]any{"sql": "SELECT 1 AS one",
		"targets": "all", "deadline": deadline.String()}, &v); err != nil {
		return huntTiming{err: err}
	}
	need := int(math.Ceil(0.99 * float64(len(v.Hosts))))
	h := huntTiming{hosts: len(v.Hosts)}
	for {
		select {
		case <-ctx.Done():
			return h
		case <-time.After(200 * time.Millisecond):
		}
		if err := api.Do(ctx, http.MethodGet, "/api/v1/hunts/"+v.ID+"?limit=1&hosts=false", nil, &v); err != nil {
			if ctx.Err() != nil {
				return h
			}
			return huntTiming{err: err}
		}
		h.answered = v.Counts["answered"] + v.Counts["error"]
		if !h.reached && h.answered >= need {
			h.reached, h.p99 = true, time.Since(start)
		}
		if h.answered >= h.hosts {
			h.total, h.all = true, time.Since(start)
			return h
		}
	}
}

// reqNames name the request kinds in the report.
var reqNames = [reqKinds]string{"enroll", "config", "distributed read", "write", "log"}

// noteError counts a failure by its kind and message (URLs and addresses
// cut off, so alike failures count together).
func (s *fleetSim) noteError(kind int, err error) {
	msg := err.Error()
	if i := strings.Index(msg, ": HTTP "); i >= 0 { // an answer: its status and error
		msg = msg[i+2:]
	} else if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	if len(msg) > 80 {
		msg = msg[:80]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.errs == nil {
		s.errs = map[string]int{}
	}
	s.errs[reqNames[kind]+": "+msg]++
}

// simReport sums up a run.
type simReport struct {
	total, failed, rowsAcked int64
	byKind                   [reqKinds]int64
	p50, p99, max            time.Duration
	enrollPhase              time.Duration // until every host enrolled; 0: not reached
	phase                    [2]struct {   // requests sent before it and after
		n        int
		p50, p99 time.Duration
	}
	kindP50, kindP99 [reqKinds]time.Duration
	errs             []string // the commonest failures, "N× kind: error"
}

func (s *fleetSim) report() simReport {
	var r simReport
	for k := range r.byKind {
		r.byKind[k] = s.byKind[k].Load()
		r.total += r.byKind[k]
	}
	r.failed, r.rowsAcked = s.failed.Load(), s.rowsAcked.Load()
	s.mu.Lock()
	r.enrollPhase = time.Duration(s.allEnrolled.Load())
	var all []time.Duration
	var byKind [reqKinds][]time.Duration
	var phase [2][]time.Duration
	for k := range s.latencies {
		for _, x := range s.latencies[k] {
			byKind[k] = append(byKind[k], x.took)
			if r.enrollPhase > 0 {
				p := 0
				if x.at >= r.enrollPhase {
					p = 1
				}
				phase[p] = append(phase[p], x.took)
			}
		}
		all = append(all, byKind[k]...)
	}
	type errCount struct {
		msg string
		n   int
	}
	var ec []errCount
	for m, n := range s.errs {
		ec = append(ec, errCount{m, n})
	}
	s.mu.Unlock()
	pct := func(lat []time.Duration, p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))].Round(10 * time.Microsecond)
	}
	slices.Sort(all)
	r.p50, r.p99, r.max = pct(all, 0.50), pct(all, 0.99), pct(all, 1)
	for p := range phase {
		slices.Sort(phase[p])
		r.phase[p].n, r.phase[p].p50, r.phase[p].p99 = len(phase[p]), pct(phase[p], 0.50), pct(phase[p], 0.99)
	}
	for k := range byKind {
		slices.Sort(byKind[k])
		r.kindP50[k], r.kindP99[k] = pct(byKind[k], 0.50), pct(byKind[k], 0.99)
	}
	slices.SortFunc(ec, func(a, b errCount) int { return b.n - a.n })
	for _, e := range ec[:min(len(ec), 3)] {
		r.errs = append(r.errs, fmt.Sprintf("%d× %s", e.n, e.msg))
	}
	return r
}
