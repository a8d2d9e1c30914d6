package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/fleet/agent"
)

// An indicator uploaded to the fleet reaches the agent's intel database; an
// event the agent then stores matches it, and the IoC hit reaches the fleet
// as a detection of kind ioc. Removing the set removes it from the agent.
func TestUpIntelReachesAgent(t *testing.T) {
	const unit = 100 * time.Millisecond
	dir := t.TempDir()
	f, _ := startUpTuned(t, dir, func(c *agent.Config) {
		c.ScheduleUnit = unit
		c.LogInterval = 200 * time.Millisecond
		c.ConfigInterval = 300 * time.Millisecond
	})
	ctx := context.Background()
	poll := func(what string, limit time.Duration, done func() (bool, string)) {
		t.Helper()
		deadline := time.Now().Add(limit)
		for {
			ok, state := done()
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %v: %s", what, limit, state)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// Malformed or empty sets are refused, nothing stored.
	for _, bad := range []struct{ query, body string }{
		{"source=x", `{"type": "bundle", "objects": [`},
		{"source=x", "not-an-indicator\n"},
		{"source=bad%20name", "198.51.100.7\n"},
		{"source=x&confidence=300", "198.51.100.7\n"},
	} {
		if err := f.client.Do(ctx, http.MethodPost, "/api/v1/intel?"+bad.query, []byte(bad.body), nil); err == nil ||
			!strings.Contains(err.Error(), "400") {
			t.Errorf("upload %s %q: %v, want a 400", bad.query, bad.body, err)
		}
	}
	var up struct {
		Source     string `json:"source"`
		Format     string `json:"format"`
		Indicators int    `json:"indicators"`
		Skipped    int    `json:"skipped"`
		Version    string `json:"version"`
	}
	if err := f.client.Do(ctx, http.MethodPost, "/api/v1/intel?source=c2&confidence=90&ttl=30d",
		[]byte("# c2 of the week\n198.51.100.0/24\nnot-an-indicator\n"), &up); err != nil {
		t.Fatal(err)
	}
	if up.Source != "c2" || up.Format != "plain" || up.Indicators != 1 || up.Skipped != 1 || up.Version == "" {
		t.Fatalf("upload = %+v", up)
	}
	var sets struct {
		Sets []struct {
			Source  string `json:"source"`
			Version string `json:"version"`
		} `json:"sets"`
	}
	if err := f.client.Do(ctx, http.MethodGet, "/api/v1/intel", nil, &sets); err != nil || len(sets.Sets) != 1 ||
		sets.Sets[0].Version != up.Version {
		t.Fatalf("GET /api/v1/intel = %+v, %v", sets, err)
	}
	indicators := func(source string) string {
		out, errs, _ := quarry(t, dir, "", "query", "--format", "csv",
			"SELECT count(*) FROM intel_indicators WHERE source = '"+source+"' AND confidence = 90")
		return strings.TrimSpace(out + errs)
	}
	poll("the set in the agent's intel database", 60*time.Second, func() (bool, string) {
		n := indicators("c2")
		return strings.HasSuffix(n, "\n1"), n
	})

	// An event stored on the agent (imported) matches it live.
	if out, errs, code := quarry(t, dir, "", "import", "--quiet", chainRecording); code != 0 {
		t.Fatalf("import: exit %d\n%s%s", code, out, errs)
	}
	type detection struct {
		HitID     string `json:"hit_id"`
		Kind      string `json:"kind"`
		RuleTitle string `json:"rule_title"`
		RuleID    string `json:"rule_id"`
	}
	var iocs, ioas struct {
		Total      int         `json:"total"`
		Detections []detection `json:"detections"`
	}
	poll("the IoC hit at the fleet", 60*time.Second, func() (bool, string) {
		err := f.client.Do(ctx, http.MethodGet, "/api/v1/detections?kind=ioc&time=detected&since=1h&limit=1000", nil, &iocs)
		return err == nil && iocs.Total > 0, fmt.Sprintf("%+v %v", iocs, err)
	})
	for _, d := range iocs.Detections {
		if d.Kind != "ioc" || d.RuleTitle != "IOC 198.51.100.0/24" || d.RuleID != "cidr:198.51.100.0/24" {
			t.Errorf("IoC detection %+v", d)
		}
	}
	if err := f.client.Do(ctx, http.MethodGet, "/api/v1/detections?kind=ioa&time=detected&since=1h&limit=1000", nil, &ioas); err != nil {
		t.Fatal(err)
	}
	for _, d := range ioas.Detections {
		if d.Kind != "ioa" || strings.HasPrefix(d.RuleTitle, "IOC ") {
			t.Errorf("kind=ioa lists %+v", d)
		}
	}
	if err := f.client.Do(ctx, http.MethodGet, "/api/v1/detections?kind=both", nil, nil); err == nil {
		t.Errorf("kind=both accepted")
	}

	// Removed at the fleet: removed from the agent.
	if err := f.client.Do(ctx, http.MethodDelete, "/api/v1/intel/c2", nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := f.client.Do(ctx, http.MethodDelete, "/api/v1/intel/c2", nil, nil); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("deleting again: %v, want a 404", err)
	}
	poll("the set gone from the agent", 60*time.Second, func() (bool, string) {
		n := indicators("c2")
		return strings.HasSuffix(n, "\n0"), n
	})
}
