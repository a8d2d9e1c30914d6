package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/fleet/agent"
	"github.com/quarry-sec/quarry/telemetry/host"
)

// TestUpImportReachesFleet is the retrospective analysis path: after
// `quarry up` (fleet server and local agent) and `quarry import` of a
// recording of the past into the same data directory, the imported hits
// and their incidents are in /api/v1/detections and /api/v1/incidents and
// on the UI's detections page within two intervals of the detection pack,
// selected by when they were detected (their events are months old). The
// pack's intervals are shortened: one "second" is 100 ms, so its 60-second
// queries run every 6 s.
func TestUpImportReachesFleet(t *testing.T) {
	const unit = 100 * time.Millisecond
	packInterval := 60 * unit
	dir := t.TempDir()
	f, _ := startUpTuned(t, dir, func(c *agent.Config) {
		c.ScheduleUnit = unit
		c.LogInterval = 200 * time.Millisecond
	})
	ctx := context.Background()
	poll := func(what string, deadline time.Time, done func() (bool, string)) {
		t.Helper()
		for {
			ok, state := done()
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not by the deadline: %s", what, state)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	poll("local host enrolled", time.Now().Add(30*time.Second), func() (bool, string) {
		var raw []byte
		err := f.client.Do(ctx, http.MethodGet, "/api/v1/hosts", nil, (*rawJSON)(&raw))
		return err == nil && bytes.Contains(raw, []byte(`"host_identifier":"`+host.Identifier()+`"`)), fmt.Sprintf("%s %v", raw, err)
	})

	if _, errs, code := quarry(t, dir, "", "import", "--quiet", "testdata/incidents/chain.json"); code != 0 {
		t.Fatalf("import: exit %d: %s", code, errs)
	}
	imported := time.Now()
	out, errs, code := quarry(t, dir, "", "query", "--format", "json",
		"SELECT DISTINCT hit_id, rule_title, time, detected_at FROM ioa_hits")
	if code != 0 {
		t.Fatalf("query: exit %d: %s", code, errs)
	}
	var local []struct {
		HitID      string `json:"hit_id"`
		RuleTitle  string `json:"rule_title"`
		Time       int64  `json:"time"`
		DetectedAt int64  `json:"detected_at"`
	}
	if err := json.Unmarshal([]byte(out), &local); err != nil || len(local) == 0 {
		t.Fatalf("local hits: %v\n%s", err, out)
	}
	for _, h := range local {
		if time.Since(time.Unix(h.Time, 0)) < 24*time.Hour || time.Since(time.Unix(h.DetectedAt, 0)) > time.Hour {
			t.Fatalf("the recording's hit %s: event %v, detected %v; want a past event detected now", h.HitID,
				time.Unix(h.Time, 0), time.Unix(h.DetectedAt, 0))
		}
	}

	// Within two pack intervals of the import: the agent's next run of the
	// hits query (at most one interval away) and its log flush.
	deadline := imported.Add(2 * packInterval)
	type detection struct {
		HitID      string    `json:"hit_id"`
		Time       time.Time `json:"time"`
		DetectedAt time.Time `json:"detected_at"`
	}
	var fleet struct {
		Total      int         `json:"total"`
		Detections []detection `json:"detections"`
	}
	missing := func() []string {
		have := map[string]bool{}
		for _, d := range fleet.Detections {
			have[d.HitID] = true
		}
		var out []string
		for _, h := range local {
			if !have[h.HitID] {
				out = append(out, h.HitID)
			}
		}
		return out
	}
	poll("imported hits in /api/v1/detections", deadline, func() (bool, string) {
		err := f.client.Do(ctx, http.MethodGet, "/api/v1/detections?time=detected&since=1h&limit=1000", nil, &fleet)
		return err == nil && len(missing()) == 0, fmt.Sprintf("missing %v (%v)", missing(), err)
	})
	for _, d := range fleet.Detections {
		if d.DetectedAt.Sub(d.Time) < 24*time.Hour {
			t.Errorf("detection %s: time %v, detected_at %v", d.HitID, d.Time, d.DetectedAt)
		}
	}
	// By event time they are not of the last hour.
	if err := f.client.Do(ctx, http.MethodGet, "/api/v1/detections?since=1h&limit=1000", nil, &fleet); err != nil || len(missing()) != len(local) {
		t.Errorf("by event time, the last hour holds imported hits: %+v, %v", fleet, err)
	}
	var incidents struct {
		Total int `json:"total"`
	}
	poll("imported incidents in /api/v1/incidents", deadline, func() (bool, string) {
		err := f.client.Do(ctx, http.MethodGet, "/api/v1/incidents?time=detected&since=1h", nil, &incidents)
		return err == nil && incidents.Total > 0, fmt.Sprintf("%+v %v", incidents, err)
	})

	// The UI's detections page, by detection time.
	page := uiSession(t, f)
	body := page("/detections?time=detected&since=1h")
	for _, h := range local {
		if !strings.Contains(body, h.RuleTitle) {
			t.Errorf("detections page lacks %q", h.RuleTitle)
		}
	}
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// uiSession signs in to the web UI of a `quarry up` with its analyst token
// and returns a function that reads a page.
func uiSession(t *testing.T, f *upFixture) func(path string) string {
	t.Helper()
	hc, err := agent.NewHTTPClient(f.url, agent.TLSOptions{CAFile: f.ca})
	if err != nil {
		t.Fatal(err)
	}
	if hc.Jar, err = cookiejar.New(nil); err != nil {
		t.Fatal(err)
	}
	get := func(path string) string {
		t.Helper()
		resp, err := hc.Get(f.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
		return string(b)
	}
	m := csrfInput.FindStringSubmatch(get("/login"))
	if m == nil {
		t.Fatal("sign-in page without a CSRF field")
	}
	resp, err := hc.PostForm(f.url+"/login", url.Values{"csrf": {m[1]}, "token": {f.token}, "next": {"/"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sign in: %s", resp.Status)
	}
	return get
}
