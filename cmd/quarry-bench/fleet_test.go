package main

import (
	"bytes"
	"context"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/fleet/server"
	"github.com/quarry-sec/quarry/fleet/store/sqlitestore"
)

// A short bench against an in-process server: every acknowledged row is
// ingested, and a hunt across every simulated host is posted and followed.
func TestBenchFleetAgainstServer(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlitestore.Open(ctx, filepath.Join(dir, sqlitestore.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	kb, err := attack.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Store: st, KB: kb, EnrollSecret: "bench", DistributedInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	token, err := server.CreateToken(ctx, st, "bench")
	if err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte("bench\n"), 0o600)
	a := &fleetBench{log: zerolog.Nop()}
	var out bytes.Buffer
	err = a.run(ctx, benchFleetOptions{hosts: 20, replicas: 1, interval: time.Second, duration: 3 * time.Second,
		fleet: hs.URL, secretFile: secret, token: token, hitsPerLog: 2}, &out)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, out.String())
	}
	// The hunt is posted and followed; whether every host answers within
	// the 3 s run depends on the machine's load, so it is not asserted.
	for _, want := range []string{"20 hosts", "failed 0", "lost 0", "live hunt   20 hosts: ", "phases    enrollment (until every host enrolled, ",
		"bench       CPU "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestBenchFleetLoopbackOnly(t *testing.T) {
	a := &fleetBench{log: zerolog.Nop()}
	err := a.run(context.Background(), benchFleetOptions{hosts: 1, replicas: 1, interval: time.Second, duration: time.Second,
		fleet: "https://fleet.example.com", secretFile: "x", token: "t", hitsPerLog: 1}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("err = %v", err)
	}
}

// Replicas share one database: without --postgres they are refused (exit
// status 2), as is a --fleet given with them.
func TestBenchFleetReplicasNeedPostgres(t *testing.T) {
	var stderr bytes.Buffer
	if code := run([]string{"fleet", "--replicas", "2", "--hosts", "1"}, io.Discard, &stderr); code != 2 ||
		!strings.Contains(stderr.String(), "--replicas needs --postgres") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}

// A failed answer names where it came from: the server's JSON error, or
// HAProxy's page.
func TestAnswerSummary(t *testing.T) {
	for body, want := range map[string]string{
		`{"error":"server busy, try again later"}`: "server busy, try again later",
		"<html><body><h1>503 Service Unavailable</h1>\nNo server is available to handle this request.\n</body></html>\n": "No server is available to handle this request.",
		"plain text": "plain text",
	} {
		if got := answerSummary([]byte(body)); got != want {
			t.Errorf("answerSummary(%q) = %q, want %q", body, got, want)
		}
	}
}
