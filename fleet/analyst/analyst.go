// Package analyst is a client of a fleet server's analyst API (bearer
// token): what the command line's hunt and the fleet load generator call.
package analyst

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Client calls a fleet server's analyst API with a bearer token.
type Client struct {
	// Base is the server's URL without a trailing slash.
	Base string
	// Token is the analyst token.
	Token string
	// HTTP sends the requests.
	HTTP *http.Client
}

// maxAnswer bounds an answer's body.
const maxAnswer = 256 << 20

// Do sends body to path with method and decodes the answer into out (nil:
// ignored). body is sent as JSON, or as it is when it is a []byte (a file,
// such as an intel set); nil sends none. A non-2xx answer is an error
// carrying the server's message.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	ctype := "application/json"
	if raw, ok := body.([]byte); ok {
		rd, ctype = bytes.NewReader(raw), "application/octet-stream"
	} else if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Content-Type", ctype)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, e.Error)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode: %w", method, path, err)
	}
	return nil
}

// Hunt is the part of GET /api/v1/hunts/{id} clients read.
type Hunt struct {
	ID       string         `json:"id"`
	SQL      string         `json:"sql"`
	Deadline time.Time      `json:"deadline"`
	Done     bool           `json:"done"`
	Counts   map[string]int `json:"counts"`
	Hosts    []struct {
		HostIdentifier string `json:"host_identifier"`
		Status         string `json:"status"`
		Message        string `json:"message,omitempty"`
		Rows           int    `json:"rows"`
	} `json:"hosts"`
	Rows []struct {
		HostIdentifier string          `json:"host_identifier"`
		Columns        json.RawMessage `json:"columns"`
	} `json:"rows"`
	RowsTotal int `json:"rows_total"`
}
