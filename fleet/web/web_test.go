package web_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/fleet/web"
)

// client is a browser-like HTTP client: cookies kept, redirects not
// followed (the tests look at them).
func client(t testing.TB) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func get(t testing.TB, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

var huntError = regexp.MustCompile(`id="hunt-error">([^<]*)<`)

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// signIn signs c in with token and returns the session's CSRF token.
func signIn(t testing.TB, c *http.Client, base, token string) string {
	t.Helper()
	_, body := get(t, c, base+"/login")
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("sign-in page has no CSRF field")
	}
	resp, err := c.PostForm(base+"/login", url.Values{"csrf": {m[1]}, "token": {token}, "next": {"/"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %s", resp.Status)
	}
	_, body = get(t, c, base+"/")
	m = csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("overview has no CSRF field (sign-out form)")
	}
	return m[1]
}

func TestSignInSessionAndCSRF(t *testing.T) {
	f := newFleet(t)
	c := client(t)
	base := f.srv.URL

	// Signed out: pages redirect to the sign-in page, which sets a CSP.
	resp, _ := get(t, c, base+"/matrix")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login?next=") {
		t.Fatalf("signed out /matrix: %s %s", resp.Status, resp.Header.Get("Location"))
	}
	resp, body := get(t, c, base+"/login")
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Fatalf("CSP %q", csp)
	}
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no CSRF field on the sign-in page")
	}
	// Sign-in without the CSRF token: refused.
	r2, err := c.PostForm(base+"/login", url.Values{"token": {f.token}})
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusForbidden {
		t.Fatalf("sign-in without CSRF: %s", r2.Status)
	}
	// A wrong token: 401 and no session.
	_, body = get(t, c, base+"/login")
	m = csrfField.FindStringSubmatch(body)
	r3, err := c.PostForm(base+"/login", url.Values{"csrf": {m[1]}, "token": {"wrong"}})
	if err != nil {
		t.Fatal(err)
	}
	b3, _ := io.ReadAll(r3.Body)
	r3.Body.Close()
	if r3.StatusCode != http.StatusUnauthorized || !strings.Contains(string(b3), "Unknown token") {
		t.Fatalf("wrong token: %s", r3.Status)
	}

	csrf := signIn(t, c, base, f.token)
	u, _ := url.Parse(base)
	var session *http.Cookie
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == "quarry_session" {
			session = ck
		}
	}
	if session == nil {
		t.Fatal("no session cookie")
	}
	// The Set-Cookie header carries HttpOnly and SameSite=Strict.
	_, body = get(t, client(t), base+"/login")
	m = csrfField.FindStringSubmatch(body)
	c2 := client(t)
	_, body = get(t, c2, base+"/login")
	m = csrfField.FindStringSubmatch(body)
	r4, err := c2.PostForm(base+"/login", url.Values{"csrf": {m[1]}, "token": {f.token}})
	if err != nil {
		t.Fatal(err)
	}
	r4.Body.Close()
	var setCookie string
	for _, sc := range r4.Header.Values("Set-Cookie") {
		if strings.HasPrefix(sc, "quarry_session=") {
			setCookie = sc
		}
	}
	if !strings.Contains(setCookie, "HttpOnly") || !strings.Contains(setCookie, "SameSite=Strict") {
		t.Fatalf("session cookie %q", setCookie)
	}

	// A POST without the session's CSRF token is refused; with it, it works.
	r5, err := c.PostForm(base+"/hunt", url.Values{"sql": {"SELECT 1"}, "targets": {"all"}})
	if err != nil {
		t.Fatal(err)
	}
	r5.Body.Close()
	if r5.StatusCode != http.StatusForbidden {
		t.Fatalf("hunt without CSRF: %s", r5.Status)
	}
	r6, err := c.PostForm(base+"/hunt", url.Values{"sql": {"SELECT 1"}, "targets": {"all"}, "csrf": {csrf}})
	if err != nil {
		t.Fatal(err)
	}
	b6, _ := io.ReadAll(r6.Body)
	r6.Body.Close()
	// No host is enrolled: the server's own error comes back on the form.
	if m := huntError.FindStringSubmatch(string(b6)); r6.StatusCode != http.StatusBadRequest || m == nil || !strings.Contains(m[1], "no enrolled host") {
		t.Fatalf("hunt with no hosts: %s %v", r6.Status, m)
	}
	// Sign-out ends the session.
	r7, err := c.PostForm(base+"/logout", url.Values{"csrf": {csrf}})
	if err != nil {
		t.Fatal(err)
	}
	r7.Body.Close()
	resp, _ = get(t, c, base+"/")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after sign-out /: %s", resp.Status)
	}
	// An open redirect through next= is not possible.
	_, body = get(t, c, base+"/login?next=//evil.example/")
	if strings.Contains(body, "evil.example") {
		t.Fatal("next= kept an off-site URL")
	}
}

func TestPagesOverSeededFleet(t *testing.T) {
	f := newFleet(t)
	seedAgents(t, f, testdataRecordings)
	c := client(t)
	signIn(t, c, f.srv.URL, f.token)
	ds, n, err := f.st.Detections(context.Background(), store.DetectionFilter{Limit: 100})
	if err != nil || n == 0 {
		t.Fatalf("detections: %d %v", n, err)
	}
	for _, p := range []struct{ path, want string }{
		{"/", "Top techniques"},
		{"/matrix", "Privilege Escalation"},
		{"/matrix?layer=detections&since=24h", ds[0].TechniqueID},
		{"/techniques/" + ds[0].TechniqueID, "Hunt this technique"},
		{"/detections?severity=" + ds[0].Severity, ds[0].RuleTitle},
		{"/detections/" + itoa(ds[0].ID), "Process tree"},
		{"/hosts", ds[0].HostIdentifier},
		{"/hosts/" + ds[0].HostID, "Recent detections"},
		{"/hunt", "attack_techniques"},
	} {
		resp, body := get(t, c, f.srv.URL+p.path)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, p.want) {
			t.Errorf("%s: %s, want %q in the page", p.path, resp.Status, p.want)
		}
	}
	resp, body := get(t, c, f.srv.URL+"/matrix/layer.json?layer=detections&since=24h")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"techniqueID": "`+ds[0].TechniqueID) {
		t.Errorf("detections layer: %s %s", resp.Status, body[:min(200, len(body))])
	}
	_ = web.ProcessQuery
}
