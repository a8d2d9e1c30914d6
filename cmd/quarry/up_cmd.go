package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/quarry-sec/quarry/fleet/agent"
	"github.com/quarry-sec/quarry/fleet/server"
	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/fleet/store/sqlitestore"
	"github.com/quarry-sec/quarry/internal/interrupt"
)

// DefaultUpListen is where `quarry up` serves.
const defaultUpListen = "127.0.0.1:7443"

// upDistributedInterval is how often the local agent asks for hunts.
const upDistributedInterval = 3 * time.Second

// upOptions configure `quarry up`.
type upOptions struct {
	listen    string
	noCollect bool
	// ready, when set, is called with the URL, token and CA file once the
	// server listens (tests).
	ready func(url, token, caFile string)
	// tuneAgent, when set, adjusts the local agent's configuration
	// (tests shorten its intervals).
	tuneAgent func(*agent.Config)
}

func (a *app) upCommand() *cobra.Command {
	var o upOptions
	cmd := &cobra.Command{
		Use:   "up [--listen 127.0.0.1:7443]",
		Short: "Start everything on this machine: a fleet server, a local agent enrolled in it, live detection",
		Long: `Start a fleet server on the loopback address (SQLite and a self-signed TLS certificate
under the data directory), and an agent on this machine enrolled in it: the fleet's
detection pack runs on the embedded engine and, as root, live process telemetry and
IoA detection feed it. Prints the URL and the analyst token for 'quarry hunt' and the
API. The enroll secret, token and certificate are made on the first run and kept in
the data directory. Ctrl-C stops everything, sending what the agent has queued.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := interrupt.Context(context.Background())
			defer stop()
			return a.up(ctx, o, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&o.listen, "listen", defaultUpListen, "loopback address to serve on (port 0: any free port)")
	cmd.Flags().BoolVar(&o.noCollect, "no-collect", false, "no live process telemetry or detection, even as root")
	cmd.Flags().BoolVar(&a.skipBadRules, "skip-bad-rules", false, "start with the rules that load when some do not (default: a rule that fails to load stops up)")
	return cmd
}

// upTokenFile keeps the analyst token `quarry up` prints (the store keeps
// only its hash); the enroll secret and certificate are those of
// `quarry fleet serve` in the same data directory.
const upTokenFile = "fleet-analyst-token"

// upFiles are where `quarry up` keeps its secrets.
type upFiles struct{ token, cert, key string }

func newUpFiles(dataDir string) upFiles {
	return upFiles{token: filepath.Join(dataDir, upTokenFile),
		cert: filepath.Join(dataDir, fleetCertFile), key: filepath.Join(dataDir, fleetKeyFile)}
}

// up runs the fleet server and the local agent until ctx ends.
func (a *app) up(ctx context.Context, o upOptions, out io.Writer) error {
	if o.listen == "" {
		o.listen = defaultUpListen
	}
	if !server.IsLoopback(o.listen) {
		return usageError{fmt.Errorf("--listen %s: quarry up serves on a loopback address only (use 'quarry fleet serve' for a fleet)", o.listen)}
	}
	files := newUpFiles(a.dataDir)
	if err := os.MkdirAll(a.dataDir, 0o700); err != nil {
		return fmt.Errorf("quarry up: %w", err)
	}
	st, err := sqlitestore.Open(ctx, sqlitestore.Path(a.dataDir))
	if err != nil {
		return err
	}
	defer st.Close()
	secret, err := a.fleetSecret("")
	if err != nil {
		return err
	}
	token, err := analystToken(ctx, st, files.token)
	if err != nil {
		return err
	}
	if _, err := server.SelfSignedCert(files.cert, files.key, nil); err != nil {
		return err
	}
	kb, err := a.knowledgeBase()
	if err != nil {
		return err
	}
	srv, err := server.New(server.Config{Store: st, KB: kb, EnrollSecret: secret, Version: version,
		DistributedInterval: upDistributedInterval, FilePacks: withProcessPack(nil),
		OnError: func(r *http.Request, err error) {
			a.log.Error().Err(err).Str("path", r.URL.Path).Msg("fleet server")
		},
		OnBackgroundError: func(err error) { a.log.Error().Err(err).Msg("fleet server") },
		OnRecovered: func(d time.Duration) {
			a.log.Info().Dur("down", d).Msg("fleet server: the database answers again")
		}})
	if err != nil {
		return err
	}
	handler, err := a.withWebUI(srv.Handler(), st, kb, true, upDistributedInterval, secret)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("quarry up: %w", err)
	}
	hs := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.ServeTLS(l, files.cert, files.key) }()
	url := "https://" + l.Addr().String()

	agentCtx, stopAgent := context.WithCancel(ctx)
	defer stopAgent()
	var wg sync.WaitGroup
	var agentErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		cfg := agent.Config{FleetURL: url, EnrollSecret: secret, TLS: agent.TLSOptions{CAFile: files.cert}}
		if o.tuneAgent != nil {
			o.tuneAgent(&cfg)
		}
		_, agentErr = a.runAgent(agentCtx, cfg, !o.noCollect)
		if agentErr != nil && agentCtx.Err() == nil {
			a.log.Error().Err(agentErr).Msg("local agent stopped")
		}
	}()
	printUp(out, url, token, files)
	if o.ready != nil {
		o.ready(url, token, files.cert)
	}
	select {
	case <-ctx.Done():
	case err = <-serveErr:
		err = fmt.Errorf("fleet server: %w", err)
	}
	// The agent goes first, so its final flush reaches the server.
	stopAgent()
	wg.Wait()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if serr := hs.Shutdown(sctx); serr != nil && err == nil {
		err = fmt.Errorf("fleet server shutdown: %w", serr)
	}
	a.log.Info().Msg("stopped")
	return err
}

func printUp(w io.Writer, url, token string, f upFiles) {
	fmt.Fprintf(w, `Quarry is up.

  fleet server   %s  (TLS certificate %s)
  web UI         %s  (sign in with the analyst token)
  analyst token  %s
  local agent    enrolled; detection pack on the embedded engine

Try:
  export QUARRY_TOKEN=%s
  %s hunt --fleet %s --tls-ca %s "SELECT id, name FROM attack_techniques LIMIT 3"
  curl --cacert %s -H "Authorization: Bearer $QUARRY_TOKEN" %s/api/v1/hosts

Ctrl-C stops everything.
`, url, f.cert, url, token, token, selfCommand(os.Args[0], exec.LookPath), url, f.cert, f.cert, url)
}

// selfCommand is how to run this quarry again from a shell: "go run
// ./cmd/quarry" when it was started by go run (its binary lives in a
// temporary build directory), "quarry" when that name on PATH is this
// program, else its absolute path.
func selfCommand(arg0 string, lookPath func(string) (string, error)) string {
	self, err := os.Executable()
	if err != nil {
		self = arg0
	}
	if strings.Contains(self, string(filepath.Separator)+"go-build") {
		return "go run ./cmd/quarry"
	}
	if p, err := lookPath("quarry"); err == nil {
		if a, err1 := filepath.EvalSymlinks(p); err1 == nil {
			if b, err2 := filepath.EvalSymlinks(self); err2 == nil && a == b {
				return "quarry"
			}
		}
	}
	if abs, err := filepath.Abs(self); err == nil {
		return abs
	}
	return arg0
}

// analystToken returns the token kept in path when the store knows it, else
// makes one, stores its hash and keeps the token in path (mode 0600).
func analystToken(ctx context.Context, st store.Store, path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		tok := strings.TrimSpace(string(b))
		ok, err := st.TokenExists(ctx, server.HashToken(tok))
		if err != nil {
			return "", err
		}
		if ok {
			return tok, nil
		}
	}
	tok, err := server.CreateToken(ctx, st, "quarry up")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("analyst token: %w", err)
	}
	return tok, nil
}
