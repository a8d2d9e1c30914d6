package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// TLSOptions says how the agent trusts the fleet server.
type TLSOptions struct {
	// CAFile, when set, is a PEM file of the certificates to trust (a
	// self-signed server certificate, or a private CA) instead of the
	// system's roots.
	CAFile string
	// Insecure skips certificate verification, and allows plain http://. It
	// is refused for any host but a loopback address.
	Insecure bool
}

// ErrNotLoopback is returned when Insecure or http:// is asked for a server
// that is not on a loopback address.
var ErrNotLoopback = errors.New("insecure transport is allowed only to a loopback address")

// IsLoopback tells whether host (a name or address, without port) is this
// machine's loopback: localhost, 127.0.0.0/8 or ::1.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// NewHTTPClient returns the HTTP client for fleetURL with opts applied: the
// server's certificate verified (against CAFile when given), http:// and
// Insecure only for loopback.
func NewHTTPClient(fleetURL string, opts TLSOptions) (*http.Client, error) {
	u, err := url.Parse(fleetURL)
	if err != nil {
		return nil, fmt.Errorf("fleet URL %q: %w", fleetURL, err)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !IsLoopback(u.Hostname()) {
			return nil, fmt.Errorf("fleet URL %s: plain http: %w", fleetURL, ErrNotLoopback)
		}
	default:
		return nil, fmt.Errorf("fleet URL %q: want https:// (or http:// on loopback)", fleetURL)
	}
	if opts.Insecure && !IsLoopback(u.Hostname()) {
		return nil, fmt.Errorf("fleet URL %s: --insecure: %w", fleetURL, ErrNotLoopback)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if opts.CAFile != "" {
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s: no PEM certificate in it", opts.CAFile)
		}
		tc.RootCAs = pool
	}
	if opts.Insecure {
		tc.InsecureSkipVerify = true
	}
	tr := &http.Transport{
		Proxy:                 nil, // a fleet agent talks to its server directly
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tc,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{Transport: tr, Timeout: 2 * time.Minute}, nil
}

// ErrNodeInvalid is returned when the server answers node_invalid: the agent
// must enroll again.
var ErrNodeInvalid = errors.New("node key invalid")

// StatusError is a non-200 answer from the server.
type StatusError struct {
	Path string
	Code int
	Body string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s: HTTP %d: %s", e.Path, e.Code, e.Body)
}

// maxResponse bounds a server response the agent reads.
const maxResponse = 64 << 20

// post sends body as JSON to base+path and decodes a 200 answer into out.
// Any other status is a *StatusError; a 401 or 403 carrying node_invalid, and
// a 200 with node_invalid true, are ErrNodeInvalid.
func post(ctx context.Context, c *http.Client, base, path string, body, out any) error {
	buf, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("%s: encode: %w", path, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(buf))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("%s: read response: %w", path, err)
	}
	var ni struct {
		NodeInvalid bool `json:"node_invalid"`
	}
	_ = json.Unmarshal(data, &ni) // only a hint; the real decode follows
	if resp.StatusCode != http.StatusOK {
		if ni.NodeInvalid || resp.StatusCode == http.StatusUnauthorized {
			return fmt.Errorf("%s: HTTP %d: %w", path, resp.StatusCode, ErrNodeInvalid)
		}
		return &StatusError{Path: path, Code: resp.StatusCode, Body: strings.TrimSpace(string(truncate(data, 200)))}
	}
	if ni.NodeInvalid {
		return fmt.Errorf("%s: %w", path, ErrNodeInvalid)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s: decode response: %w", path, err)
	}
	return nil
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
