package web_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/quarry-sec/quarry/fleet/store"
)

const chromiumPath = "/usr/bin/chromium"

// browser starts headless Chromium at 1280×800 with a fresh profile and
// the flags that keep it quiet on a closed network.
func browser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("end-to-end UI test skipped: %s is missing (apt-get install chromium; .ci/run installs it)", chromiumPath)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// artifacts is where screenshots go: $QUARRY_UI_ARTIFACTS, else a
// temporary directory.
func artifacts(t *testing.T) string {
	if d := os.Getenv("QUARRY_UI_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// step runs browser actions with a deadline, failing the test with what
// was being done.
func step(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(c, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// noHorizontalScroll fails when the page is wider than the 1280 px window.
func noHorizontalScroll(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	w := eval[int](t, ctx, `document.documentElement.scrollWidth`)
	if w > 1280 {
		t.Errorf("%s: the page is %d px wide at 1280×800 (horizontal scrolling)", page, w)
	}
}

func screenshot(t *testing.T, ctx context.Context, path string, sel string) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var png []byte
	var err error
	if sel == "" {
		png, err = chromedp.Run(c, chromedp.CaptureScreenshot())
	} else {
		png, err = chromedp.Run(c, chromedp.Screenshot(chromedp.CSS(sel)))
	}
	if err != nil {
		t.Fatalf("screenshot %s: %v", path, err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// TestUIEndToEnd drives the UI in headless Chromium over a fleet whose
// hosts are Quarry agents replaying recorded attacks: sign in, the
// matrix and its layers, a technique, a detection and its process tree,
// a hunt with live results and exports.
func TestUIEndToEnd(t *testing.T) {
	ctx := browser(t)
	f := newFleet(t)
	recs := testdataRecordings
	if shared := available(sharedRecordings); len(shared) > 0 {
		recs = append(recs[:len(recs):len(recs)], shared...)
	} else {
		t.Log("../shared/datasets is absent: seeding from the committed testdata recordings only")
	}
	seedAgents(t, f, recs)
	out := artifacts(t)
	base := f.srv.URL

	// The detection with the largest process tree makes the tree
	// screenshot; every detection's page is checked below.
	ds, total, err := f.st.Detections(context.Background(), store.DetectionFilter{Limit: 1000})
	if err != nil || total == 0 {
		t.Fatalf("seeded detections: %d, %v", total, err)
	}

	// Sign in.
	step(t, ctx, "sign in",
		chromedp.Navigate(base+"/matrix"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), f.token),
		chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("#matrix")),
	)
	// The coverage layer: 14 tactics in matrix order, covered cells hot.
	tactics := eval[[]string](t, ctx, `Array.from(document.querySelectorAll('.tactic h3 a')).map(a => a.textContent)`)
	want := []string{"Reconnaissance", "Resource Development", "Initial Access", "Execution", "Persistence",
		"Privilege Escalation", "Defense Evasion", "Credential Access", "Discovery", "Lateral Movement",
		"Collection", "Command and Control", "Exfiltration", "Impact"}
	if strings.Join(tactics, "|") != strings.Join(want, "|") {
		t.Fatalf("matrix tactics %q, want %q", tactics, want)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('#matrix .h1, #matrix .h2, #matrix .h3, #matrix .h4, #matrix .h5').length`); n < 20 {
		t.Errorf("coverage layer: %d covered cells, want the builtin pack's techniques", n)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('#legend .cell').length`); n < 2 {
		t.Errorf("legend: %d entries", n)
	}
	noHorizontalScroll(t, ctx, "matrix")
	// Sub-techniques are collapsed, and expand.
	if open := eval[int](t, ctx, `document.querySelectorAll('#matrix details[open]').length`); open != 0 {
		t.Errorf("%d techniques expanded on load", open)
	}
	step(t, ctx, "expand sub-techniques", chromedp.Click(chromedp.CSS("#expand-all")))
	if open := eval[int](t, ctx, `document.querySelectorAll('#matrix details[open]').length`); open < 50 {
		t.Errorf("expand: %d techniques open", open)
	}
	noHorizontalScroll(t, ctx, "matrix, expanded")
	step(t, ctx, "collapse sub-techniques", chromedp.Click(chromedp.CSS("#expand-all")))
	// The Navigator layer download is a 4.5 layer.
	layer := eval[string](t, ctx, `fetch(document.getElementById('layer-download').href).then(r => r.text())`)
	if !strings.Contains(layer, `"layer": "4.5"`) || !strings.Contains(layer, `"techniqueID"`) {
		t.Errorf("coverage layer download: %.200s", layer)
	}

	// ATT&CK v19: 15 tactics (Stealth and Defense Impairment), still no
	// sideways scrolling, collapsed or expanded; then back to v18.1.
	step(t, ctx, "ATT&CK v19", chromedp.Click(chromedp.CSS("#attack-19")), chromedp.WaitVisible(chromedp.CSS("#attack-19.on")))
	tactics = eval[[]string](t, ctx, `Array.from(document.querySelectorAll('.tactic h3 a')).map(a => a.textContent)`)
	if len(tactics) != 15 || !slices.Contains(tactics, "Stealth") || !slices.Contains(tactics, "Defense Impairment") {
		t.Errorf("v19 matrix tactics %q", tactics)
	}
	noHorizontalScroll(t, ctx, "matrix v19")
	if rows := eval[int](t, ctx, `new Set(Array.from(document.querySelectorAll('.tactic')).map(e => e.offsetTop)).size`); rows != 1 {
		t.Errorf("v19 matrix: tactics on %d rows, want one", rows)
	}
	step(t, ctx, "expand v19 sub-techniques", chromedp.Click(chromedp.CSS("#expand-all")))
	noHorizontalScroll(t, ctx, "matrix v19, expanded")
	screenshot(t, ctx, filepath.Join(out, "matrix-v19.png"), "")
	step(t, ctx, "ATT&CK v18.1", chromedp.Click(chromedp.CSS("#attack-18")), chromedp.WaitVisible(chromedp.CSS("#attack-18.on")))

	// Switch to the detections layer: the detected techniques are hot.
	step(t, ctx, "detections layer", chromedp.Click(chromedp.CSS("#layer-detections")),
		chromedp.WaitVisible(chromedp.CSS("#layer-detections.on")))
	detected := map[string]bool{}
	for _, d := range ds {
		detected[d.TechniqueID] = true
	}
	hot := eval[[]string](t, ctx, `Array.from(document.querySelectorAll('#matrix [data-tech]')).filter(a => {
		const own = a.matches('.sub, .leaf') ? a : a.closest('details');
		return /\bh[1-5]\b/.test(own.className);
	}).map(a => a.dataset.tech)`)
	for id := range detected {
		found := false
		for _, h := range hot {
			found = found || h == id
		}
		if !found {
			t.Errorf("detections layer: %s was detected but its cell is not hot (hot: %v)", id, hot)
		}
	}
	layer = eval[string](t, ctx, `fetch(document.getElementById('layer-download').href).then(r => r.text())`)
	for id := range detected {
		if !strings.Contains(layer, `"techniqueID": "`+id+`"`) {
			t.Errorf("detections layer download lacks %s", id)
		}
	}
	step(t, ctx, "expand sub-techniques", chromedp.Click(chromedp.CSS("#expand-all")))
	screenshot(t, ctx, filepath.Join(out, "matrix.png"), "")
	// The keys c and x switch the layers.
	step(t, ctx, "coverage layer (key c)", chromedp.KeyEvent("c"), chromedp.WaitVisible(chromedp.CSS("#layer-coverage.on")))
	screenshot(t, ctx, filepath.Join(out, "matrix-coverage.png"), "")
	step(t, ctx, "back to the detections layer (key x)", chromedp.KeyEvent("x"),
		chromedp.WaitVisible(chromedp.CSS("#layer-detections.on")),
		chromedp.Click(chromedp.CSS("#expand-all"))) // the technique may be a sub-technique

	// Click a detected technique: its page.
	tech := ds[0].TechniqueID
	step(t, ctx, "open technique "+tech,
		chromedp.ScrollIntoView(chromedp.CSS(fmt.Sprintf(`#matrix [data-tech="%s"]`, tech))),
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`#matrix [data-tech="%s"]`, tech))),
		chromedp.WaitVisible(chromedp.CSS("#hunt-technique")),
	)
	h1 := eval[string](t, ctx, `document.querySelector('h1').textContent`)
	if !strings.Contains(h1, tech) {
		t.Errorf("technique page h1 %q, want %s", h1, tech)
	}
	body := eval[string](t, ctx, `document.querySelector('main').innerText`)
	for _, w := range []string{"Description", "Mitigations", "Rules covering it", "Recent detections", ds[0].RuleTitle} {
		if !strings.Contains(body, w) {
			t.Errorf("technique page lacks %q", w)
		}
	}
	noHorizontalScroll(t, ctx, "technique")

	// The detections list, filtered, and a detection with its tree.
	step(t, ctx, "detections list",
		chromedp.Navigate(base+"/detections?since=24h&severity="+ds[0].Severity),
		chromedp.WaitVisible(chromedp.CSS("table.list")),
	)
	if n := eval[int](t, ctx, `document.querySelectorAll('table.list tbody tr').length`); n == 0 {
		t.Fatal("detections list is empty")
	}
	noHorizontalScroll(t, ctx, "detections list (event and detection times)")
	// The time switch beside since/until: by detection time.
	step(t, ctx, "time: detected",
		chromedp.SetValue(chromedp.CSS("#time-field"), "detected"),
		chromedp.Submit(chromedp.CSS("#det-filters")),
		chromedp.WaitReady(chromedp.CSS(`#time-field option[value="detected"][selected]`)),
	)
	if q := eval[string](t, ctx, `location.search`); !strings.Contains(q, "time=detected") {
		t.Errorf("time switch: %s", q)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('table.list tbody td.c-detected').length`); n == 0 {
		t.Error("no detections by detection time, or no detection-time column")
	}
	// j selects the first row, Enter opens it.
	first := eval[string](t, ctx, `document.querySelector('table.list tbody tr a.rowlink').getAttribute('href')`)
	step(t, ctx, "open the first detection with j, Enter", chromedp.KeyEvent("j"), chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(chromedp.CSS("#tree")))
	if loc := eval[string](t, ctx, `location.pathname`); loc != first {
		t.Errorf("j, Enter opened %s, want %s", loc, first)
	}
	noHorizontalScroll(t, ctx, "detections")
	bestTree, bestID := 0, ds[0].ID
	for _, d := range ds {
		step(t, ctx, fmt.Sprintf("detection %d", d.ID),
			chromedp.Navigate(fmt.Sprintf("%s/detections/%d", base, d.ID)),
			chromedp.WaitVisible(chromedp.CSS("#tree")),
		)
		nodes := eval[int](t, ctx, `document.querySelectorAll('#tree .node').length`)
		hit := eval[string](t, ctx, `(document.querySelector('#tree .node.hit') || {}).innerText || ''`)
		if !strings.Contains(hit, d.TechniqueID) {
			t.Errorf("detection %d: the hit node %q lacks its technique badge %s", d.ID, hit, d.TechniqueID)
		}
		if nodes > bestTree {
			bestTree, bestID = nodes, d.ID
		}
	}
	t.Logf("largest process tree: %d processes (detection %d)", bestTree, bestID)
	if bestTree < 2 {
		t.Errorf("no detection has a process tree with its parent (largest: %d nodes)", bestTree)
	}
	step(t, ctx, "open the largest tree",
		chromedp.Navigate(base+"/detections"),
		chromedp.WaitVisible(chromedp.CSS("table.list")),
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`a.rowlink[href="/detections/%d"]`, bestID))),
		chromedp.WaitVisible(chromedp.CSS("#tree")),
	)
	noHorizontalScroll(t, ctx, "detection")
	body = eval[string](t, ctx, `document.querySelector('main').innerText`)
	for _, w := range []string{"Recommendations", "Confidence", "Author", "Process tree"} {
		if !strings.Contains(body, w) {
			t.Errorf("detection page lacks %q", w)
		}
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('#tree .tbadge').length`); n == 0 {
		t.Error("process tree: no technique badges")
	}
	step(t, ctx, "show the tree", chromedp.ScrollIntoView(chromedp.CSS("#tree-h")))
	screenshot(t, ctx, filepath.Join(out, "process-tree.png"), "")

	// Incidents: the list, sorted by score, and an incident's process
	// graph. With ../shared/datasets, the mshta → PowerShell recording's
	// incident must hold both techniques; otherwise the top incident is
	// shown.
	ins, insTotal, err := f.st.Incidents(context.Background(), store.IncidentFilter{Limit: 1000})
	if err != nil || insTotal == 0 {
		t.Fatalf("seeded incidents: %d, %v", insTotal, err)
	}
	shown, shownNodes := ins[0], 0
	for _, in := range ins {
		tree, err := f.st.IncidentTree(context.Background(), in.ID)
		if err != nil {
			t.Fatal(err)
		}
		mshta := in.HostIdentifier == "mshta-lab"
		if (mshta && (shown.HostIdentifier != "mshta-lab" || len(tree) > shownNodes)) ||
			(!mshta && shown.HostIdentifier != "mshta-lab" && len(tree) > shownNodes) {
			shown, shownNodes = in, len(tree)
		}
	}
	wantTechs := shown.Techniques
	if shown.HostIdentifier == "mshta-lab" {
		wantTechs = []string{"T1218.005", "T1059.001"}
		for _, w := range wantTechs {
			if !strings.Contains(strings.Join(shown.Techniques, ","), w) {
				t.Errorf("the mshta → PowerShell incident lacks %s: %v", w, shown.Techniques)
			}
		}
	}
	step(t, ctx, "incidents list (key i)", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(".cards")),
		chromedp.KeyEvent("i"), chromedp.WaitVisible(chromedp.CSS("table#incidents")))
	scores := eval[[]string](t, ctx, `Array.from(document.querySelectorAll('#incidents tbody .c-score')).map(td => td.textContent)`)
	if len(scores) != min(insTotal, 50) {
		t.Errorf("incidents list: %d rows, want %d", len(scores), min(insTotal, 50))
	}
	for i := 1; i < len(scores); i++ {
		if a, b := scores[i-1], scores[i]; len(a) < len(b) || (len(a) == len(b) && a < b) {
			t.Errorf("incidents list not sorted by score: %s before %s", a, b)
		}
	}
	noHorizontalScroll(t, ctx, "incidents")
	step(t, ctx, "open the incident",
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`#incidents a.rowlink[href="/incidents/%d"]`, shown.ID))),
		chromedp.WaitVisible(chromedp.CSS("#graph")))
	nodes := eval[int](t, ctx, `document.querySelectorAll('#graph .node').length`)
	if nodes != shownNodes || nodes < 2 {
		t.Errorf("incident graph: %d processes, want the host's %d (at least a parent and a child)", nodes, shownNodes)
	}
	badges := eval[string](t, ctx, `Array.from(document.querySelectorAll('#graph .tbadge')).map(b => b.textContent + ':' + b.className).join(' ')`)
	for _, w := range wantTechs {
		if !strings.Contains(badges, w+":tbadge sev-") {
			t.Errorf("incident graph: no badge for %s (badges: %s)", w, badges)
		}
	}
	// An edge: a process with a badge is nested under its parent's node.
	if n := eval[int](t, ctx, `document.querySelectorAll('#graph li > ul > li .tbadge').length`); n == 0 {
		t.Error("incident graph: no technique badge on a child process (parent → child edges)")
	}
	chainNames := eval[[]string](t, ctx, `Array.from(document.querySelectorAll('#chain .ctactic')).map(c => c.textContent)`)
	if len(chainNames) != len(shown.Tactics) {
		t.Errorf("attack chain %q, want the incident's tactics %v", chainNames, shown.Tactics)
	}
	noHorizontalScroll(t, ctx, "incident")
	step(t, ctx, "show the graph", chromedp.ScrollIntoView(chromedp.CSS("#graph-h")))
	screenshot(t, ctx, filepath.Join(out, "incident-graph.png"), "")

	// A host reported osquery's tables (hundreds): the schema browser lists
	// them after Quarry's, collapsed, and its filter finds one.
	hosts, err := f.st.Hosts(context.Background())
	if err != nil || len(hosts) == 0 {
		t.Fatalf("hosts: %v %v", hosts, err)
	}
	var reported []store.HostTable
	for i := range 300 {
		reported = append(reported, store.HostTable{Name: fmt.Sprintf("osquery_table_with_a_long_name_%03d", i),
			Columns: []store.TableColumn{{Name: "pid", Type: "BIGINT"}, {Name: "a_rather_long_column_name_for_layout", Type: "UNSIGNED BIGINT"}}})
	}
	reported = append(reported, store.HostTable{Name: "listening_ports", Columns: []store.TableColumn{{Name: "port", Type: "INTEGER"}}})
	if err := f.st.PutHostSchema(context.Background(), &store.HostSchema{HostID: hosts[0].ID, Version: "osquery 5.12.1",
		ReportedAt: time.Now(), Tables: reported}); err != nil {
		t.Fatal(err)
	}

	// Hunt this technique: the hunt page comes pre-filled; run it on every
	// host and watch the answers arrive.
	step(t, ctx, "hunt from the technique page",
		chromedp.Navigate(base+"/techniques/"+tech),
		chromedp.WaitVisible(chromedp.CSS("#hunt-technique")),
		chromedp.Click(chromedp.CSS("#hunt-technique")),
		chromedp.WaitVisible(chromedp.CSS("#sql")),
	)
	sql := eval[string](t, ctx, `document.getElementById('sql').value`)
	if !strings.Contains(sql, tech) || !strings.Contains(sql, "quarry_process_events") {
		t.Fatalf("hunt page SQL not pre-filled for %s: %q", tech, sql)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('#schema details.table').length`); n < 10 {
		t.Errorf("schema browser lists %d tables", n)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('#schema details.host-table:not([open])').length`); n != len(reported) {
		t.Errorf("schema browser lists %d collapsed host tables, want %d", n, len(reported))
	}
	step(t, ctx, "filter the schema browser", chromedp.SendKeys(chromedp.CSS("#schema-filter"), "listening"))
	if names := eval[[]string](t, ctx, `Array.from(document.querySelectorAll('#schema details.table:not([hidden])')).map(d => d.dataset.name)`); len(names) != 1 || names[0] != "listening_ports" {
		t.Errorf("filtering the schema browser for \"listening\" shows %v", names)
	}
	eval[bool](t, ctx, `(() => { const f = document.getElementById("schema-filter"); f.value = "";
  return f.dispatchEvent(new Event("input")); })()`)
	noHorizontalScroll(t, ctx, "hunt")
	step(t, ctx, "run the hunt",
		chromedp.SetValue(chromedp.CSS("input[name=deadline]"), "60s"),
		chromedp.Click(chromedp.CSS("#run-hunt")),
		chromedp.WaitVisible(chromedp.CSS("#hunt-state")),
	)
	deadline := time.Now().Add(45 * time.Second)
	for eval[string](t, ctx, `document.getElementById('hunt-state').dataset.done`) != "true" {
		if time.Now().After(deadline) {
			t.Fatalf("hunt not done after 45 s: %s", eval[string](t, ctx, `document.getElementById('hunt-hosts-table').innerText`))
		}
		time.Sleep(300 * time.Millisecond)
	}
	statuses := eval[[]string](t, ctx, `Array.from(document.querySelectorAll('#hunt-hosts-table .st')).map(s => s.textContent)`)
	if len(statuses) != len(recs) {
		t.Errorf("hunt: %d host statuses, want %d", len(statuses), len(recs))
	}
	for _, s := range statuses {
		if s != "answered" {
			t.Errorf("hunt: host status %q", s)
		}
	}
	rows := eval[int](t, ctx, `document.querySelectorAll('#hunt-results tbody tr').length`)
	if rows == 0 {
		t.Errorf("hunt for %s: no rows", tech)
	}
	csv := eval[string](t, ctx, `fetch(document.getElementById('export-csv').href).then(r => r.text())`)
	if lines := strings.Split(strings.TrimSpace(csv), "\n"); !strings.HasPrefix(lines[0], "host_identifier,") || !strings.Contains(lines[0], ",cmdline,") || len(lines) != rows+1 {
		t.Errorf("CSV export: %d lines for %d rows, header %q", len(lines), rows, lines[0])
	}
	js := eval[string](t, ctx, `fetch(document.getElementById('export-json').href).then(r => r.text())`)
	if !strings.Contains(js, `"rows_total": `+fmt.Sprint(rows)) {
		t.Errorf("JSON export: %.200s", js)
	}
	noHorizontalScroll(t, ctx, "hunt results")
	screenshot(t, ctx, filepath.Join(out, "hunt.png"), "")
	step(t, ctx, "recent hunts", chromedp.Navigate(base+"/hunt"), chromedp.WaitVisible(chromedp.CSS("#recent-hunts")))
	if recent := eval[string](t, ctx, `document.getElementById('recent-hunts').innerText`); !strings.Contains(recent, "Hunt "+tech) {
		t.Errorf("the hunt page's recent hunts lack the hunt for %s: %q", tech, recent)
	}

	// Overview and hosts.
	for _, p := range []struct{ path, sel string }{{"/", ".cards"}, {"/hosts", "table.list"}, {"/hosts/" + ds[0].HostID, "dl.facts"}} {
		step(t, ctx, p.path, chromedp.Navigate(base+p.path), chromedp.WaitVisible(chromedp.CSS(p.sel)))
		noHorizontalScroll(t, ctx, p.path)
	}
	screenshot(t, ctx, filepath.Join(out, "host.png"), "")
	step(t, ctx, "overview", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(".cards")))
	screenshot(t, ctx, filepath.Join(out, "overview.png"), "")
	t.Logf("screenshots in %s", out)
}
