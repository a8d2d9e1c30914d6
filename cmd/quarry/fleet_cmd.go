package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/quarry-sec/quarry/fleet/server"
	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/fleet/store/pgstore"
	"github.com/quarry-sec/quarry/fleet/store/sqlitestore"
	"github.com/quarry-sec/quarry/internal/interrupt"
)

// Files of the fleet server in the data directory.
const (
	fleetSecretFile = "fleet-enroll-secret"
	fleetCertFile   = "fleet-cert.pem"
	fleetKeyFile    = "fleet-key.pem"
)

// fleetFlags are the storage flags every fleet command shares.
type fleetFlags struct {
	postgres string
}

func (f *fleetFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.postgres, "postgres", os.Getenv("QUARRY_FLEET_POSTGRES"),
		"store the fleet in PostgreSQL at this DSN (default $QUARRY_FLEET_POSTGRES; else SQLite in the data directory)")
}

// fleetStore opens the fleet store: PostgreSQL when a DSN is given, else
// SQLite in the data directory.
func (a *app) fleetStore(ctx context.Context, f fleetFlags) (store.Store, error) {
	if f.postgres != "" {
		return pgstore.Open(ctx, f.postgres)
	}
	return sqlitestore.Open(ctx, sqlitestore.Path(a.dataDir))
}

func (a *app) fleetCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fleet",
		Short: "The fleet server: osquery hosts and Quarry agents report to it; analysts hunt through it",
	}
	cmd.AddCommand(a.fleetServeCommand(), a.fleetTokenCommand())
	return cmd
}

type fleetServeOptions struct {
	fleetFlags
	addr, certFile, keyFile, secretFile, packsDir string
	pprofAddr                                     string
	selfSigned                                    bool
	interval, nodeCacheTTL                        time.Duration
}

func (a *app) fleetServeCommand() *cobra.Command {
	var o fleetServeOptions
	cmd := &cobra.Command{
		Use:   "serve [--addr HOST:PORT] [--postgres DSN] [--tls-cert F --tls-key F | --tls-self-signed] [--enroll-secret-file F]",
		Short: "Serve osquery's TLS API and the analyst API",
		Long: `Serve osquery's TLS remote API (under /api/v1/osquery/ and Fleet's /api/osquery/) and
the analyst API (/api/v1/...). Plain HTTP only on a loopback address; elsewhere TLS, with
--tls-cert/--tls-key, or a self-signed certificate kept in the data directory
(--tls-self-signed, the default off loopback). Hosts enroll with the secret of
--enroll-secret-file, else the data directory's ` + fleetSecretFile + ` (created on first run).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := interrupt.Context(cmd.Context())
			defer stop()
			return a.fleetServe(ctx, o)
		},
	}
	o.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&o.addr, "addr", "127.0.0.1:8080", "listen address")
	fl.StringVar(&o.certFile, "tls-cert", "", "TLS certificate (PEM)")
	fl.StringVar(&o.keyFile, "tls-key", "", "TLS private key (PEM)")
	fl.BoolVar(&o.selfSigned, "tls-self-signed", false, "serve TLS with a self-signed certificate kept in the data directory")
	fl.StringVar(&o.secretFile, "enroll-secret-file", "", "file holding the enroll secret")
	fl.StringVar(&o.packsDir, "packs-dir", "", "directory of osquery pack files (NAME.json) served besides Quarry's detection pack")
	fl.DurationVar(&o.interval, "distributed-interval", server.DefaultDistributedInterval, "how often hosts ask for live hunts")
	fl.DurationVar(&o.nodeCacheTTL, "node-cache-ttl", server.DefaultNodeCacheTTL,
		"how long a node key lookup is trusted; with several replicas, a host's replaced key works on the others up to this long (0: no cache)")
	fl.StringVar(&o.pprofAddr, "pprof", "", "serve Go's profiling endpoints (/debug/pprof/) on this loopback address, for performance work")
	return cmd
}

func (a *app) fleetServe(ctx context.Context, o fleetServeOptions) error {
	if (o.certFile == "") != (o.keyFile == "") {
		return usageError{errors.New("--tls-cert and --tls-key go together")}
	}
	if o.certFile != "" && o.selfSigned {
		return usageError{errors.New("--tls-self-signed and --tls-cert exclude each other")}
	}
	useTLS := o.certFile != "" || o.selfSigned || !server.IsLoopback(o.addr)
	a.skipBadRules = true // the UI's coverage view: a broken local rule is reported, not fatal
	if useTLS && o.certFile == "" {
		o.certFile, o.keyFile = filepath.Join(a.dataDir, fleetCertFile), filepath.Join(a.dataDir, fleetKeyFile)
		host, _, _ := net.SplitHostPort(o.addr)
		hostname, _ := os.Hostname()
		if err := os.MkdirAll(a.dataDir, 0o700); err != nil {
			return fmt.Errorf("fleet serve: %w", err)
		}
		created, err := server.SelfSignedCert(o.certFile, o.keyFile, []string{host, hostname})
		if err != nil {
			return err
		}
		if created {
			a.log.Info().Str("cert", o.certFile).Msg("self-signed certificate created; give it to hosts as --tls_server_certs")
		}
	}
	secret, err := a.fleetSecret(o.secretFile)
	if err != nil {
		return err
	}
	kb, err := a.knowledgeBase()
	if err != nil {
		return err
	}
	var filePacks map[string]server.Pack
	if o.packsDir != "" {
		if filePacks, err = server.LoadPacksDir(o.packsDir); err != nil {
			return err
		}
	}
	st, err := a.fleetStore(ctx, o.fleetFlags)
	if err != nil {
		return err
	}
	defer st.Close()
	srv, err := server.New(server.Config{
		Store: st, KB: kb, EnrollSecret: secret, Version: version, FilePacks: withProcessPack(filePacks),
		DistributedInterval: o.interval, NodeCacheTTL: nodeCacheTTL(o.nodeCacheTTL),
		OnError: func(r *http.Request, err error) {
			ev := a.log.Error().Err(err)
			if r != nil {
				ev = ev.Str("method", r.Method).Str("path", r.URL.Path)
			}
			ev.Msg("fleet request failed")
		},
		OnBackgroundError: func(err error) { a.log.Error().Err(err).Msg("fleet server") },
		OnRecovered: func(d time.Duration) {
			a.log.Info().Dur("down", d).Msg("fleet server: the database answers again")
		},
	})
	if err != nil {
		return err
	}
	// With PostgreSQL, the server hears of other replicas' enrollments
	// and hunts (LISTEN/NOTIFY) and so may cache node keys long.
	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() { defer close(watched); srv.Watch(watchCtx) }()
	defer func() { stopWatch(); <-watched }()
	handler, err := a.withWebUI(srv.Handler(), st, kb, useTLS, o.interval, secret)
	if err != nil {
		return err
	}
	hs := &http.Server{
		Addr:              o.addr,
		Handler:           a.logRequests(handler),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12},
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("fleet serve: %w", err)
	}
	storage := "sqlite:" + sqlitestore.Path(a.dataDir)
	if o.postgres != "" {
		storage = "postgres"
	}
	scheme := "http"
	if useTLS {
		scheme = "https"
	}
	a.log.Info().Str("url", scheme+"://"+ln.Addr().String()).Str("store", storage).Int("packs", len(filePacks)).
		Msg("fleet server listening")
	if o.pprofAddr != "" {
		if err := servePprof(ctx, o.pprofAddr); err != nil {
			return fmt.Errorf("fleet serve: %w", err)
		}
		a.log.Info().Str("addr", o.pprofAddr).Msg("profiling endpoints on /debug/pprof/")
	}
	errc := make(chan error, 1)
	go func() {
		if useTLS {
			errc <- hs.ServeTLS(ln, o.certFile, o.keyFile)
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("fleet serve: %w", err)
	case <-ctx.Done():
	}
	a.log.Info().Msg("fleet server stopping")
	shutdown, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdown); err != nil {
		return fmt.Errorf("fleet serve: shutdown: %w", err)
	}
	return nil
}

// fleetSecret reads the enroll secret from file, else from the data
// directory, creating a random one there on first use.
func (a *app) fleetSecret(file string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("enroll secret: %w", err)
		}
		s := strings.TrimSpace(string(b))
		if s == "" {
			return "", fmt.Errorf("enroll secret: %s is empty", file)
		}
		return s, nil
	}
	path := filepath.Join(a.dataDir, fleetSecretFile)
	if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) != "" {
		return strings.TrimSpace(string(b)), nil
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("enroll secret: %w", err)
	}
	s := base64.RawURLEncoding.EncodeToString(raw)
	if err := os.MkdirAll(a.dataDir, 0o700); err != nil {
		return "", fmt.Errorf("enroll secret: %w", err)
	}
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("enroll secret: %w", err)
	}
	a.log.Info().Str("file", path).Msg("enroll secret created; give it to hosts as --enroll_secret_path")
	return s, nil
}

// logRequests logs each request at debug level.
func (a *app) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		a.log.Debug().Str("method", r.Method).Str("path", r.URL.Path).Int("status", sw.status).
			Dur("took", time.Since(start)).Str("remote", r.RemoteAddr).Msg("request")
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (a *app) fleetTokenCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Analyst API tokens"}
	var f fleetFlags
	var name string
	create := &cobra.Command{
		Use:   "create [--name NAME]",
		Short: "Create an analyst API token and print it (last line); only its hash is stored",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := a.fleetStore(cmd.Context(), f)
			if err != nil {
				return err
			}
			defer st.Close()
			tok, err := server.CreateToken(cmd.Context(), st, name)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "token created; it is shown only now (use it as: Authorization: Bearer TOKEN)")
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			return nil
		},
	}
	f.register(create)
	create.Flags().StringVar(&name, "name", "analyst", "a name for the token")
	cmd.AddCommand(create)

	var lf fleetFlags
	list := &cobra.Command{
		Use:   "list",
		Short: "List the analyst API tokens: ID (the start of the token's hash), name, created",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := a.fleetStore(cmd.Context(), lf)
			if err != nil {
				return err
			}
			defer st.Close()
			toks, err := st.Tokens(cmd.Context())
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tNAME\tCREATED")
			for _, t := range toks {
				fmt.Fprintf(w, "%s\t%s\t%s\n", t.ID, t.Name, t.Created.UTC().Format(time.RFC3339))
			}
			return w.Flush()
		},
	}
	lf.register(list)
	cmd.AddCommand(list)

	var rf fleetFlags
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an analyst API token by its ID (see token list): it stops working at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := a.fleetStore(cmd.Context(), rf)
			if err != nil {
				return err
			}
			defer st.Close()
			if err := st.RevokeToken(cmd.Context(), args[0]); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("no token with ID %q (quarry fleet token list shows them)", args[0])
				}
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "token %s revoked\n", args[0])
			return nil
		},
	}
	rf.register(revoke)
	cmd.AddCommand(revoke)
	return cmd
}

// servePprof serves net/http/pprof on a loopback address until ctx ends.
func servePprof(ctx context.Context, addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--pprof %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("--pprof %q: profiling is served on loopback addresses only", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--pprof: %w", err)
	}
	// The block and mutex profiles show where requests wait (for the
	// database's connections, a group commit, a lock): sample them.
	runtime.SetBlockProfileRate(int(100 * time.Microsecond))
	runtime.SetMutexProfileFraction(10)
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	go func() {
		<-ctx.Done()
		hs.Close()
	}()
	return nil
}

// nodeCacheTTL maps --node-cache-ttl to server.Config's: 0 turns the cache
// off (negative there, 0 meaning the default).
func nodeCacheTTL(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}
