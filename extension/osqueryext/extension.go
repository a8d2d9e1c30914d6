package osqueryext

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/apache/thrift/lib/go/thrift"
	"github.com/osquery/osquery-go"

	"github.com/quarry-sec/quarry/tables"
)

// Defaults for Config's zero values. osqueryd passes --timeout and
// --interval (its --extensions_timeout and --extensions_interval) to an
// extension it autoloads; these match osquery's own defaults.
const (
	DefaultName     = "quarry"
	DefaultTimeout  = 3 * time.Second
	DefaultInterval = 3 * time.Second
)

// DuplicatePrefix is put before the name of a table that osqueryd refuses
// because it has a table of that name already (osqueryd rejects the whole
// extension on any duplicate name).
const DuplicatePrefix = "quarry_"

// serverBufferSize is the buffer of each osqueryd connection's transport. A
// generate response is written through it and flushed once, instead of one
// write(2) per Thrift field.
const serverBufferSize = 64 << 10

// ErrOsqueryGone is wrapped in Run's error when osqueryd stops answering the
// extension's health pings.
var ErrOsqueryGone = errors.New("osquery stopped answering")

// Config configures an Extension.
type Config struct {
	// Name is the extension's name in osquery (osquery_extensions.name and
	// --extensions_require); default "quarry".
	Name string
	// Version is reported to osquery (osquery_extensions.version).
	Version string
	// Socket is osqueryd's extension manager socket (osquery's --socket).
	Socket string
	// Timeout bounds connecting to the socket and each call to osqueryd.
	Timeout time.Duration
	// Interval is how often the extension pings osqueryd; when a ping
	// fails, Run stops.
	Interval time.Duration
	// Renames gives tables another name in osquery, for names osquery's own
	// tables already take (Quarry's process_events, say). A table osqueryd
	// still refuses as a duplicate is renamed DuplicatePrefix+name and the
	// registration retried.
	Renames map[string]string
	// MaxRows bounds the rows of one generate response; zero: no bound.
	MaxRows int
	// Unbuffered serves with osquery-go's default transport, one write(2)
	// per Thrift field. For comparison in benchmarks only: it is 14-30
	// times slower on large responses.
	Unbuffered bool
	// OnRegistered, if set, is called once osqueryd has accepted the
	// extension, from Run's goroutine; it must return promptly (start
	// background work in goroutines). Nothing slow runs before
	// registration, so osquery's extension timeout is never at risk.
	OnRegistered func(uuid int64)
}

// Extension serves a registry's tables to osqueryd.
type Extension struct {
	cfg    Config
	tables []*tables.Table
	names  map[string]string // table name -> name in osquery
}

// New returns an extension serving every table of reg.
func New(reg *tables.Registry, cfg Config) (*Extension, error) {
	if cfg.Socket == "" {
		return nil, errors.New("osquery extension: no socket path")
	}
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	e := &Extension{cfg: cfg, tables: reg.Tables(), names: make(map[string]string)}
	if len(e.tables) == 0 {
		return nil, errors.New("osquery extension: no tables to serve")
	}
	for _, t := range e.tables {
		e.names[t.Name] = t.Name
		if n, ok := cfg.Renames[t.Name]; ok && n != "" {
			e.names[t.Name] = n
		}
	}
	return e, nil
}

// TableNames returns the name each table is served under in osquery, by
// Quarry table name, including renames osqueryd forced; call it from
// OnRegistered or after Run returns.
func (e *Extension) TableNames() map[string]string {
	out := make(map[string]string, len(e.names))
	for k, v := range e.names {
		out[k] = v
	}
	return out
}

// Run connects to osqueryd, registers the extension with its tables and
// serves osquery's calls until osqueryd asks the extension to shut down or
// ctx ends (both return nil, after deregistering), or osqueryd stops
// answering pings (ErrOsqueryGone). Connecting or registering fails with an
// error. Run is called once.
func (e *Extension) Run(ctx context.Context) error {
	mc, err := dialManager(ctx, e.cfg.Socket, e.cfg.Timeout)
	if err != nil {
		return fmt.Errorf("osquery extension: %w", err)
	}
	defer mc.Close()
	for attempt := 0; ; attempt++ {
		err := e.serve(ctx, mc)
		dup, isDup := duplicateName(err)
		if !isDup || attempt >= len(e.tables) || !e.rename(dup) {
			return err
		}
	}
}

// rename gives the table osqueryd refused as osqueryName a prefixed name.
func (e *Extension) rename(osqueryName string) bool {
	for t, n := range e.names {
		if n == osqueryName {
			e.names[t] = DuplicatePrefix + n
			return true
		}
	}
	return false
}

// duplicateName recognizes osqueryd's refusal of a duplicate table name.
func duplicateName(err error) (string, bool) {
	const marker = "Duplicate registry item: "
	if err == nil {
		return "", false
	}
	msg := err.Error()
	i := strings.Index(msg, marker)
	if i < 0 {
		return "", false
	}
	name := strings.TrimSpace(msg[i+len(marker):])
	if j := strings.IndexAny(name, " :,;"); j >= 0 {
		name = name[:j]
	}
	return name, name != ""
}

// serve registers once and serves until the server stops.
func (e *Extension) serve(ctx context.Context, mc *managerClient) error {
	opts := []osquery.ServerOption{
		osquery.WithClient(mc),
		osquery.ExtensionVersion(e.cfg.Version),
		osquery.ServerTimeout(e.cfg.Timeout),
	}
	if !e.cfg.Unbuffered {
		opts = append(opts, osquery.WithTransportFactory(thrift.NewTBufferedTransportFactory(serverBufferSize)))
	}
	srv, err := osquery.NewExtensionManagerServer(e.cfg.Name, e.cfg.Socket, opts...)
	if err != nil {
		return fmt.Errorf("osquery extension: %w", err)
	}
	for _, t := range e.tables {
		srv.RegisterPlugin(NewTablePlugin(t, e.names[t.Name], e.cfg.MaxRows))
	}

	served := make(chan error, 1)
	go func() { served <- srv.Start() }()

	registered := mc.Registered()
	isRegistered := false
	var tick <-chan time.Time
	stop := func(cause error) error {
		if isRegistered {
			_ = srv.Shutdown(context.Background()) // deregister, then stop serving
			mc.Close()
		} else {
			mc.Close() // interrupt a registration in flight
			_ = srv.Shutdown(context.Background())
		}
		<-served
		return cause
	}
	for {
		select {
		case err := <-served:
			// osqueryd called shutdown (the server stopped cleanly), or
			// registering or listening failed.
			if err != nil {
				return fmt.Errorf("osquery extension: %w", err)
			}
			if !isRegistered {
				return errors.New("osquery extension: stopped before registration")
			}
			return nil
		case uuid := <-registered:
			registered, isRegistered = nil, true
			ticker := time.NewTicker(e.cfg.Interval)
			defer ticker.Stop()
			tick = ticker.C
			if e.cfg.OnRegistered != nil {
				e.cfg.OnRegistered(int64(uuid))
			}
		case <-tick:
			if err := ping(mc); err != nil {
				return stop(fmt.Errorf("osquery extension: %w: %w", ErrOsqueryGone, err))
			}
		case <-ctx.Done():
			return stop(nil)
		}
	}
}

func ping(mc *managerClient) error {
	st, err := mc.Ping()
	if err != nil {
		return err
	}
	if st.Code != 0 {
		return fmt.Errorf("ping status %d: %s", st.Code, st.Message)
	}
	return nil
}
