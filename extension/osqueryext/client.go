package osqueryext

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/apache/thrift/lib/go/thrift"
	"github.com/osquery/osquery-go/gen/osquery"
)

// managerClient is the extension's connection to osqueryd's extension
// manager socket. It implements osquery-go's ExtensionManager interface so
// the osquery-go server uses it (WithClient) instead of osquery-go's own
// client, for three reasons: it dials at once instead of after osquery-go's
// fixed 200 ms socket poll, which is most of the time from start to
// registered; its calls go through a buffered transport; and it reports the
// moment osqueryd accepts the registration.
type managerClient struct {
	mu         sync.Mutex // the Thrift connection takes one call at a time
	trans      thrift.TTransport
	client     *osquery.ExtensionManagerClient
	registered chan osquery.ExtensionRouteUUID // gets the UUID once
	once       sync.Once
}

// dialRetry is how often dialManager tries an absent or refusing socket.
const dialRetry = 20 * time.Millisecond

// clientBufferSize is the buffer of the manager connection's transport.
const clientBufferSize = 64 << 10

// dialManager connects to osqueryd's extension socket, retrying until it
// answers, timeout passes or ctx ends. Each call on the connection may take
// up to timeout.
func dialManager(ctx context.Context, path string, timeout time.Duration) (*managerClient, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	for {
		conn, err := d.DialContext(ctx, "unix", path)
		if err == nil {
			sock := thrift.NewTSocketFromConnConf(conn, &thrift.TConfiguration{SocketTimeout: timeout})
			trans := thrift.NewTBufferedTransport(sock, clientBufferSize)
			return &managerClient{
				trans: trans,
				client: osquery.NewExtensionManagerClientFactory(trans,
					thrift.NewTBinaryProtocolFactoryConf(nil)),
				registered: make(chan osquery.ExtensionRouteUUID, 1),
			}, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to osquery at %s: %w", path, err)
		case <-time.After(dialRetry):
		}
	}
}

// Registered delivers the extension's UUID once osqueryd has accepted its
// registration.
func (c *managerClient) Registered() <-chan osquery.ExtensionRouteUUID { return c.registered }

// Close closes the connection.
func (c *managerClient) Close() {
	// Not under mu: closing is how a call blocked on a dead osqueryd is
	// interrupted.
	_ = c.trans.Close()
}

// Ping asks osqueryd whether it is alive.
func (c *managerClient) Ping() (*osquery.ExtensionStatus, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.client.Ping(context.Background())
}

// Call calls a plugin of osqueryd's registry.
func (c *managerClient) Call(registry, item string, req osquery.ExtensionPluginRequest) (*osquery.ExtensionResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.client.Call(context.Background(), registry, item, req)
}

// Extensions lists the extensions osqueryd knows.
func (c *managerClient) Extensions() (osquery.InternalExtensionList, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.client.Extensions(context.Background())
}

// RegisterExtension registers the extension and its plugins with osqueryd.
func (c *managerClient) RegisterExtension(info *osquery.InternalExtensionInfo, reg osquery.ExtensionRegistry) (*osquery.ExtensionStatus, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, err := c.client.RegisterExtension(context.Background(), info, reg)
	if err == nil && st != nil && st.Code == 0 {
		c.once.Do(func() { c.registered <- st.UUID })
	}
	return st, err
}

// DeregisterExtension removes the extension from osqueryd.
func (c *managerClient) DeregisterExtension(uuid osquery.ExtensionRouteUUID) (*osquery.ExtensionStatus, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.client.DeregisterExtension(context.Background(), uuid)
}

// Options returns osqueryd's options.
func (c *managerClient) Options() (osquery.InternalOptionList, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.client.Options(context.Background())
}

// Query runs SQL in osqueryd.
func (c *managerClient) Query(sql string) (*osquery.ExtensionResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.client.Query(context.Background(), sql)
}

// GetQueryColumns returns the columns SQL would return in osqueryd.
func (c *managerClient) GetQueryColumns(sql string) (*osquery.ExtensionResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.client.GetQueryColumns(context.Background(), sql)
}
