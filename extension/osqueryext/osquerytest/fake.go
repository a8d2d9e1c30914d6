// Package osquerytest is a fake osqueryd for tests and benchmarks of
// osquery extensions: osquery-go's mock extension manager served on a unix
// socket with the generated Thrift processor, the way osqueryd serves its
// extension socket. It accepts registerExtension (refusing duplicate table
// names as osqueryd does), answers ping and deregisterExtension, and dials a
// registered extension's socket to call generate, ping and shutdown on it.
package osquerytest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/thrift/lib/go/thrift"
	"github.com/osquery/osquery-go/gen/osquery"
	"github.com/osquery/osquery-go/mock"
)

// Registration is what an extension registered.
type Registration struct {
	UUID     int64
	Info     osquery.InternalExtensionInfo
	Registry osquery.ExtensionRegistry
}

// Fake is a fake osqueryd extension manager.
type Fake struct {
	// Socket is the manager socket to pass an extension as --socket.
	Socket string

	dir        string
	srv        *thrift.TSimpleServer
	served     chan struct{}
	coreTables map[string]bool
	failPings  atomic.Bool

	mu           sync.Mutex
	nextUUID     int64
	regs         []Registration
	refused      []string
	registered   chan Registration
	deregistered chan int64
}

// Start listens on a fresh socket in a new temporary directory (short, for
// the unix socket path limit). coreTables are table names osqueryd itself
// has: registering one of them is refused with osqueryd's "Duplicate
// registry item" status.
func Start(coreTables ...string) (*Fake, error) {
	dir, err := os.MkdirTemp("", "osqt")
	if err != nil {
		return nil, fmt.Errorf("fake osqueryd: %w", err)
	}
	f := &Fake{
		Socket:       filepath.Join(dir, "osquery.em"),
		dir:          dir,
		served:       make(chan struct{}),
		coreTables:   make(map[string]bool),
		nextUUID:     41,
		registered:   make(chan Registration, 16),
		deregistered: make(chan int64, 16),
	}
	for _, t := range coreTables {
		f.coreTables[t] = true
	}
	m := &mock.ExtensionManager{
		PingFunc:                f.ping,
		RegisterExtensionFunc:   f.register,
		DeregisterExtensionFunc: f.deregister,
		ExtensionsFunc: func(context.Context) (osquery.InternalExtensionList, error) {
			return osquery.InternalExtensionList{}, nil
		},
		OptionsFunc: func(context.Context) (osquery.InternalOptionList, error) {
			return osquery.InternalOptionList{}, nil
		},
	}
	ss := thrift.NewTServerSocketFromAddrTimeout(&net.UnixAddr{Name: f.Socket, Net: "unix"}, 0)
	if err := ss.Listen(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("fake osqueryd: listen: %w", err)
	}
	f.srv = thrift.NewTSimpleServer4(osquery.NewExtensionManagerProcessor(m), ss,
		thrift.NewTBufferedTransportFactory(64<<10), thrift.NewTBinaryProtocolFactoryConf(nil))
	go func() {
		defer close(f.served)
		_ = f.srv.Serve()
	}()
	return f, nil
}

// Close stops the fake and removes its directory. Extensions must have
// closed their connections first: the Thrift server waits for them.
func (f *Fake) Close() error {
	err := f.srv.Stop()
	<-f.served
	if rmErr := os.RemoveAll(f.dir); err == nil {
		err = rmErr
	}
	return err
}

// FailPings makes ping answer with a failure status, as if osqueryd were
// going away.
func (f *Fake) FailPings(fail bool) { f.failPings.Store(fail) }

func (f *Fake) ping(context.Context) (*osquery.ExtensionStatus, error) {
	if f.failPings.Load() {
		return &osquery.ExtensionStatus{Code: 1, Message: "shutting down"}, nil
	}
	return &osquery.ExtensionStatus{Code: 0, Message: "OK"}, nil
}

func (f *Fake) register(_ context.Context, info *osquery.InternalExtensionInfo, reg osquery.ExtensionRegistry) (*osquery.ExtensionStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for name := range reg["table"] {
		if f.coreTables[name] {
			f.refused = append(f.refused, name)
			return &osquery.ExtensionStatus{Code: 1, Message: "Duplicate registry item: " + name}, nil
		}
	}
	f.nextUUID++
	r := Registration{UUID: f.nextUUID, Registry: reg}
	if info != nil {
		r.Info = *info
	}
	f.regs = append(f.regs, r)
	select {
	case f.registered <- r:
	default:
	}
	return &osquery.ExtensionStatus{Code: 0, Message: "OK", UUID: osquery.ExtensionRouteUUID(r.UUID)}, nil
}

func (f *Fake) deregister(_ context.Context, uuid osquery.ExtensionRouteUUID) (*osquery.ExtensionStatus, error) {
	select {
	case f.deregistered <- int64(uuid):
	default:
	}
	return &osquery.ExtensionStatus{Code: 0, Message: "OK"}, nil
}

// WaitRegistered waits for the next successful registration.
func (f *Fake) WaitRegistered(ctx context.Context) (Registration, error) {
	select {
	case r := <-f.registered:
		return r, nil
	case <-ctx.Done():
		return Registration{}, fmt.Errorf("fake osqueryd: no registration: %w", ctx.Err())
	}
}

// WaitDeregistered waits for the next deregistration and returns its UUID.
func (f *Fake) WaitDeregistered(ctx context.Context) (int64, error) {
	select {
	case u := <-f.deregistered:
		return u, nil
	case <-ctx.Done():
		return 0, fmt.Errorf("fake osqueryd: no deregistration: %w", ctx.Err())
	}
}

// Refused returns the table names refused as duplicates so far.
func (f *Fake) Refused() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.refused...)
}

// Client is the fake osqueryd's connection to one extension's socket.
type Client struct {
	trans  thrift.TTransport
	client *osquery.ExtensionClient
}

// Dial connects to the socket of the extension registered as uuid
// (osquery's "<socket>.<uuid>"), retrying until it listens or ctx ends.
func (f *Fake) Dial(ctx context.Context, uuid int64) (*Client, error) {
	path := fmt.Sprintf("%s.%d", f.Socket, uuid)
	var d net.Dialer
	for {
		conn, err := d.DialContext(ctx, "unix", path)
		if err == nil {
			trans := thrift.NewTBufferedTransport(thrift.NewTSocketFromConnConf(conn, nil), 64<<10)
			return &Client{
				trans:  trans,
				client: osquery.NewExtensionClientFactory(trans, thrift.NewTBinaryProtocolFactoryConf(nil)),
			}, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("fake osqueryd: dial %s: %w", path, err)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Close closes the connection.
func (c *Client) Close() error { return c.trans.Close() }

// StatusError is a call answered with a non-zero status.
type StatusError struct {
	Code    int32
	Message string
}

func (e *StatusError) Error() string { return fmt.Sprintf("status %d: %s", e.Code, e.Message) }

// Generate calls the table's generate action with the given context JSON,
// as osqueryd does for each scan of an extension table.
func (c *Client) Generate(ctx context.Context, table, contextJSON string) ([]map[string]string, error) {
	return c.Call(ctx, table, osquery.ExtensionPluginRequest{"action": "generate", "context": contextJSON})
}

// Call calls a table plugin with a request.
func (c *Client) Call(ctx context.Context, table string, req osquery.ExtensionPluginRequest) ([]map[string]string, error) {
	resp, err := c.client.Call(ctx, "table", table, req)
	if err != nil {
		return nil, fmt.Errorf("fake osqueryd: call %s: %w", table, err)
	}
	if resp.Status == nil {
		return nil, errors.New("fake osqueryd: response without status")
	}
	if resp.Status.Code != 0 {
		return nil, &StatusError{Code: resp.Status.Code, Message: resp.Status.Message}
	}
	return resp.Response, nil
}

// Ping pings the extension.
func (c *Client) Ping(ctx context.Context) error {
	st, err := c.client.Ping(ctx)
	if err != nil {
		return fmt.Errorf("fake osqueryd: ping: %w", err)
	}
	if st.Code != 0 {
		return &StatusError{Code: st.Code, Message: st.Message}
	}
	return nil
}

// Shutdown asks the extension to shut down, as osqueryd does when it stops.
func (c *Client) Shutdown(ctx context.Context) error {
	if err := c.client.Shutdown(ctx); err != nil {
		return fmt.Errorf("fake osqueryd: shutdown: %w", err)
	}
	return nil
}
