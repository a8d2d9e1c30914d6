package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/quarry-sec/quarry/fleet/agent"
	"github.com/quarry-sec/quarry/fleet/analyst"
	"github.com/quarry-sec/quarry/internal/interrupt"
)

// parseTargets turns --targets (all, host1,host2, platform:linux) into the
// API's targets.
func parseTargets(s string) any {
	s = strings.TrimSpace(s)
	if s == "" || s == "all" {
		return "all"
	}
	if p, ok := strings.CutPrefix(s, "platform:"); ok {
		return map[string]string{"platform": p}
	}
	var hosts []string
	for _, h := range strings.Split(s, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, h)
		}
	}
	return map[string][]string{"hosts": hosts}
}

func (a *app) huntCommand() *cobra.Command {
	var fleet, token, targets, format, caFile string
	var deadline time.Duration
	var insecure bool
	cmd := &cobra.Command{
		Use:   "hunt --fleet URL [--targets all|HOST,HOST|platform:linux] [--deadline 60s] SQL",
		Short: "Run a live query across the fleet and print every host's rows and status",
		Long: `Post a hunt to a fleet server, wait until every targeted host answered or the deadline
passed, then print the rows (with their host) and each host's status: answered, error
(with SQLite's message), or expired. The analyst token comes from --token or
$QUARRY_TOKEN; '-' as SQL reads it from standard input.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if fleet == "" {
				return usageError{errors.New("--fleet is required")}
			}
			if token == "" {
				token = os.Getenv("QUARRY_TOKEN")
			}
			if token == "" {
				return usageError{errors.New("an analyst token is required: --token or $QUARRY_TOKEN")}
			}
			if err := oneOf("format", format, formatTable, formatJSON); err != nil {
				return err
			}
			sql := args[0]
			if sql == "-" {
				b, err := io.ReadAll(cmd.InOrStdin())
				if err != nil {
					return err
				}
				sql = string(b)
			}
			hc, err := agent.NewHTTPClient(fleet, agent.TLSOptions{CAFile: caFile, Insecure: insecure})
			if err != nil {
				return usageError{err}
			}
			ctx, stop := interrupt.Context(context.Background())
			defer stop()
			c := &analyst.Client{Base: strings.TrimRight(fleet, "/"), Token: token, HTTP: hc}
			progress := cmd.ErrOrStderr()
			if !isTerminal(progress) {
				progress = io.Discard
			}
			v, err := runHunt(ctx, c, sql, parseTargets(targets), deadline, progress)
			if err != nil {
				return err
			}
			return printHunt(cmd.OutOrStdout(), v, format)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&fleet, "fleet", "", "fleet server URL")
	fl.StringVar(&token, "token", "", "analyst API token (default $QUARRY_TOKEN)")
	fl.StringVar(&targets, "targets", "all", "all, a comma-separated list of host identifiers, or platform:NAME")
	fl.DurationVar(&deadline, "deadline", 60*time.Second, "how long hosts have to answer")
	fl.StringVarP(&format, "format", "f", formatTable, "output: table or json")
	fl.StringVar(&caFile, "tls-ca", "", "PEM file of the certificate(s) to trust for the server")
	fl.BoolVar(&insecure, "insecure", false, "skip certificate verification (loopback servers only)")
	return cmd
}

// runHunt posts the hunt and polls it until every target answered or the
// deadline passed; it returns the hunt with all its rows.
func runHunt(ctx context.Context, c *analyst.Client, sql string, targets any, deadline time.Duration, progress io.Writer) (*analyst.Hunt, error) {
	var v analyst.Hunt
	body := map[string]any{"sql": sql, "targets": targets, "deadline": deadline.String()}
	if err := c.Do(ctx, http.MethodPost, "/api/v1/hunts", body, &v); err != nil {
		return nil, err
	}
	until := time.Now().Add(deadline + 2*time.Second)
	for !v.Done && time.Now().Before(until) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
		if err := c.Do(ctx, http.MethodGet, "/api/v1/hunts/"+url.PathEscape(v.ID)+"?limit=1", nil, &v); err != nil {
			return nil, err
		}
		fmt.Fprintf(progress, "\rhunt %s: %d answered, %d errors, %d pending", v.ID, v.Counts["answered"], v.Counts["error"], v.Counts["pending"])
	}
	fmt.Fprint(progress, "\r\033[K")
	// The rows, a page at a time.
	var all analyst.Hunt
	for offset := 0; ; {
		var page analyst.Hunt
		path := fmt.Sprintf("/api/v1/hunts/%s?limit=10000&offset=%d", url.PathEscape(v.ID), offset)
		if err := c.Do(ctx, http.MethodGet, path, nil, &page); err != nil {
			return nil, err
		}
		if offset == 0 {
			all = page
		} else {
			all.Rows = append(all.Rows, page.Rows...)
		}
		offset += len(page.Rows)
		if len(page.Rows) == 0 || offset >= page.RowsTotal {
			break
		}
	}
	return &all, nil
}

// printHunt writes the rows (host first) and the per-host statuses.
func printHunt(w io.Writer, v *analyst.Hunt, format string) error {
	cols := []string{"host"}
	seen := map[string]bool{"host": true}
	rows := make([]map[string]any, len(v.Rows))
	for i, r := range v.Rows {
		keys, vals := orderedObject(r.Columns)
		for _, k := range keys {
			if !seen[k] {
				seen[k] = true
				cols = append(cols, k)
			}
		}
		vals["host"] = r.HostIdentifier
		rows[i] = vals
	}
	if format == formatJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"hunt": v.ID, "sql": v.SQL, "counts": v.Counts, "hosts": v.Hosts, "rows": rows})
	}
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	vals := make([]any, len(cols))
	i := 0
	if len(rows) > 0 {
		_, err := writeTable(bw, cols, vals, func() (bool, error) {
			if i >= len(rows) {
				return false, nil
			}
			for j, c := range cols {
				vals[j] = rows[i][c]
			}
			i++
			return true, nil
		})
		if err != nil {
			return err
		}
	}
	fmt.Fprintf(bw, "%s from %s: %d answered, %s, %d pending, %d expired\n", plural(v.RowsTotal, "row"), plural(len(v.Hosts), "host"),
		v.Counts["answered"], plural(v.Counts["error"], "error"), v.Counts["pending"], v.Counts["expired"])
	for _, h := range v.Hosts {
		switch h.Status {
		case "answered":
			fmt.Fprintf(bw, "  %-30s answered (%d rows)\n", h.HostIdentifier, h.Rows)
		case "error":
			fmt.Fprintf(bw, "  %-30s error: %s\n", h.HostIdentifier, h.Message)
		default:
			fmt.Fprintf(bw, "  %-30s %s\n", h.HostIdentifier, h.Status)
		}
	}
	return nil
}

// orderedObject decodes a JSON object keeping its key order.
func orderedObject(raw json.RawMessage) ([]string, map[string]any) {
	vals := map[string]any{}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, vals
	}
	var keys []string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			break
		}
		k, _ := t.(string)
		var v any
		if err := dec.Decode(&v); err != nil {
			break
		}
		if n, ok := v.(json.Number); ok {
			v = n.String()
		}
		keys = append(keys, k)
		vals[k] = v
	}
	return keys, vals
}

// plural says n things in English: "1 host", "2 hosts".
func plural[N int | int64](n N, thing string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", thing)
	}
	return fmt.Sprintf("%d %ss", n, thing)
}
