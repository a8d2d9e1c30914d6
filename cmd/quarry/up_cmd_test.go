package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/quarry-sec/quarry/fleet/agent"
	"github.com/quarry-sec/quarry/fleet/analyst"
	"github.com/quarry-sec/quarry/telemetry/host"
)

// upFixture runs `quarry up` on a free loopback port until the test ends.
type upFixture struct {
	url, token, ca string
	client         *analyst.Client
}

func startUp(t *testing.T, dataDir string) (*upFixture, func() error) {
	return startUpTuned(t, dataDir, nil)
}

// startUpTuned is startUp with the local agent's configuration adjusted by
// tune (nil: as quarry up has it).
func startUpTuned(t *testing.T, dataDir string, tune func(*agent.Config)) (*upFixture, func() error) {
	t.Helper()
	a := &app{dataDir: dataDir, stderr: io.Discard, log: zerolog.Nop()}
	ready := make(chan upFixture, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- a.up(ctx, upOptions{listen: "127.0.0.1:0", noCollect: true, tuneAgent: tune, ready: func(url, token, ca string) {
			ready <- upFixture{url: url, token: token, ca: ca}
		}}, io.Discard)
		a.closeAll()
	}()
	var f upFixture
	select {
	case f = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("up: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("up did not start")
	}
	hc, err := agent.NewHTTPClient(f.url, agent.TLSOptions{CAFile: f.ca})
	if err != nil {
		t.Fatal(err)
	}
	f.client = &analyst.Client{Base: f.url, Token: f.token, HTTP: hc}
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-done
	}
	t.Cleanup(func() { stop() })
	return &f, stop
}

func TestUpServesAndHunts(t *testing.T) {
	dir := t.TempDir()
	f, stop := startUp(t, dir)
	ctx := context.Background()
	var v struct {
		Version string `json:"version"`
	}
	if err := f.client.Do(ctx, http.MethodGet, "/version", nil, &v); err != nil || v.Version != version {
		t.Fatalf("/version = %+v, %v", v, err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		var raw []byte
		err := f.client.Do(ctx, http.MethodGet, "/api/v1/hosts", nil, (*rawJSON)(&raw))
		if err == nil && bytes.Contains(raw, []byte(`"host_identifier":"`+host.Identifier()+`"`)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("local host not listed: %s, %v", raw, err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	good, err := runHunt(ctx, f.client, "SELECT id, name FROM attack_techniques WHERE id = 'T1059.004'", parseTargets("all"), 30*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(good.Hosts) != 1 || good.Hosts[0].Status != "answered" || len(good.Rows) != 1 {
		t.Fatalf("hunt = %+v", good)
	}
	var out bytes.Buffer
	if err := printHunt(&out, good, formatTable); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "Unix Shell") || !strings.Contains(out.String(), host.Identifier()) {
		t.Errorf("table:\n%s", out.String())
	}

	bad, err := runHunt(ctx, f.client, "SELECT * FROM no_such_tabel", parseTargets(host.Identifier()), 30*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(bad.Hosts) != 1 || bad.Hosts[0].Status != "error" || !strings.Contains(bad.Hosts[0].Message, "no such table") {
		t.Fatalf("bad hunt = %+v", bad)
	}
	out.Reset()
	printHunt(&out, bad, formatTable)
	if !strings.Contains(out.String(), "error: ") {
		t.Errorf("table:\n%s", out.String())
	}
	if err := stop(); err != nil {
		t.Fatalf("up returned %v", err)
	}

	// A second run keeps the token and the enrolled host.
	f2, _ := startUp(t, dir)
	if f2.token != f.token {
		t.Errorf("token changed across runs")
	}
}

// rawJSON keeps a response body as it is.
type rawJSON []byte

func (r *rawJSON) UnmarshalJSON(b []byte) error { *r = append((*r)[:0], b...); return nil }
