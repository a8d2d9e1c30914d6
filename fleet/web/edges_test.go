package web_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/fleet/store"
)

// TestStaticNoListing: /static/ serves files, never a directory listing.
func TestStaticNoListing(t *testing.T) {
	f := newFleet(t)
	c := client(t)
	for _, p := range []string{"/static/", "/static/./", "/static/%2e/"} {
		resp, body := get(t, c, f.srv.URL+p)
		if resp.StatusCode == http.StatusOK || strings.Contains(body, ".css") || strings.Contains(body, ".js") {
			t.Errorf("GET %s: %s, a listing: %.200q", p, resp.Status, body)
		}
	}
	if resp, _ := get(t, c, f.srv.URL+"/static/app.css"); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /static/app.css: %s", resp.Status)
	}
}

// TestLoginNextStaysOnSite: after sign-in, next leads only to a path of
// this site; anything a browser could read as another origin leads to /.
func TestLoginNextStaysOnSite(t *testing.T) {
	f := newFleet(t)
	cases := map[string]string{
		"/hunt?x=1":            "/hunt?x=1",
		"/%09/example.com":     "/",
		"/\t/example.com":      "/",
		"//example.com":        "/",
		"/\\example.com":       "/",
		"/\n/example.com":      "/",
		"https://example.com/": "/",
		"javascript:alert(1)":  "/",
		"/a\\b":                "/",
		"/\x7f/example.com":    "/",
	}
	for next, want := range cases {
		c := client(t)
		_, body := get(t, c, f.srv.URL+"/login")
		m := csrfField.FindStringSubmatch(body)
		if m == nil {
			t.Fatal("sign-in page has no CSRF field")
		}
		// The form's next, as a browser would post it after following
		// /login?next=… with the value URL-decoded once.
		dec, err := url.QueryUnescape(next)
		if err != nil {
			dec = next
		}
		resp, err := c.PostForm(f.srv.URL+"/login", url.Values{"csrf": {m[1]}, "token": {f.token}, "next": {dec}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Location"); got != want {
			t.Errorf("next %q: redirected to %q, want %q", next, got, want)
		}
	}
}

// TestHuntCSVDefusesEveryCell: every cell of a hunt's CSV export that a
// spreadsheet would run as a formula is prefixed with ' — host identifiers
// and column names too — while plain numbers stay numbers.
func TestHuntCSVDefusesEveryCell(t *testing.T) {
	f := newFleet(t)
	ctx := context.Background()
	h := &store.Host{NodeKey: "k1", HostIdentifier: "=cmd|' /C calc'!A0", Hostname: "evil"}
	if err := f.st.EnrollHost(ctx, h); err != nil {
		t.Fatal(err)
	}
	hunt := &store.Hunt{ID: "h1", SQL: "SELECT 1;", Targets: store.Targets{All: true},
		Created: time.Now(), Deadline: time.Now().Add(time.Hour)}
	if err := f.st.CreateHunt(ctx, hunt, []string{h.ID}); err != nil {
		t.Fatal(err)
	}
	row := `{"+1+cmd|' /C calc'!A0":"-2+HYPERLINK(\"http://x\")","n":"-1","s":"  =1+1","q":"\"@SUM(A1)","t":"\tx","p":"+3.5"}`
	if ok, err := f.st.AnswerHunt(ctx, "h1", h.ID, store.Answer{Rows: []json.RawMessage{json.RawMessage(row)}, At: time.Now()}); err != nil || !ok {
		t.Fatalf("answer: %v %v", ok, err)
	}
	c := client(t)
	signIn(t, c, f.srv.URL, f.token)
	resp, body := get(t, c, f.srv.URL+"/hunts/h1/export.csv")
	if resp.StatusCode != 200 {
		t.Fatalf("export: %s %s", resp.Status, body)
	}
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	safe := map[string]bool{"-1": true, "+3.5": true}
	for _, rec := range recs {
		for _, cell := range rec {
			t0 := strings.TrimLeft(cell, " \"")
			if t0 != "" && strings.ContainsRune("=+-@\t\r", rune(t0[0])) && !safe[cell] {
				t.Errorf("cell %q is not defused (CSV %q)", cell, body)
			}
		}
	}
	for c := range safe {
		if !strings.Contains(body, ","+c) && !strings.Contains(body, c+",") && !strings.HasSuffix(strings.TrimSpace(body), c) {
			t.Errorf("plain number %s was changed: %q", c, body)
		}
	}
}
