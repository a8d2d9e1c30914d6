package web_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/fleet/server"
	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/fleet/web"
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

// TestSessionsAcrossReplicas: a session cookie is sealed under the session
// key, so a replica sharing the key (and the database) serves a session
// made on another; a replica with another key does not; revoking the
// session's token ends it.
func TestSessionsAcrossReplicas(t *testing.T) {
	kb, rules := knowledge(t)
	ctx := context.Background()
	st := newFleet(t).st
	token, err := server.CreateToken(ctx, st, "replicas")
	if err != nil {
		t.Fatal(err)
	}
	replica := func(key string) string {
		ui, err := web.New(web.Config{Store: st, KB: kb, Rules: rules, SessionKey: []byte(key),
			OnError: func(r *http.Request, err error) { t.Errorf("web UI: %s: %v", r.URL.Path, err) }})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(ui)
		t.Cleanup(srv.Close)
		return srv.URL
	}
	a, b, other := replica("fleet key"), replica("fleet key"), replica("another key")
	c := client(t)
	signIn(t, c, a, token)
	cookies := c.Jar.Cookies(mustURL(t, a))
	for _, base := range []string{b, other} {
		c2 := client(t)
		c2.Jar.SetCookies(mustURL(t, base), cookies)
		resp, _ := get(t, c2, base+"/hosts")
		if want := base == b; (resp.StatusCode == http.StatusOK) != want {
			t.Errorf("replica %s: %s (same key: %v)", base, resp.Status, want)
		}
	}
	toks, _ := st.Tokens(ctx)
	for _, tok := range toks {
		if tok.Name == "replicas" {
			if err := st.RevokeToken(ctx, tok.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if resp, _ := get(t, c, a+"/hosts"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("after the token was revoked: %s, want a redirect to sign in", resp.Status)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
