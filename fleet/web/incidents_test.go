package web_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/telemetry"
)

// TestIncidentPages: the incidents list (filters, paging, order by
// score) and an incident page whose graph nests the processes parent →
// child, badges their techniques by severity and shows the chain's
// tactics in matrix order, over incidents stored as a host reports them.
func TestIncidentPages(t *testing.T) {
	f := newFleet(t)
	ctx := context.Background()
	now := time.Now().Truncate(time.Second)
	h := &store.Host{NodeKey: "k1", HostIdentifier: "ws-1", Hostname: "ws-1.lab", Family: "windows", EnrolledAt: now, LastSeen: now}
	o := &store.Host{NodeKey: "k2", HostIdentifier: "ws-2", Hostname: "ws-2.lab", Family: "windows", EnrolledAt: now, LastSeen: now}
	for _, x := range []*store.Host{h, o} {
		if err := f.st.EnrollHost(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	at := now.Add(-10 * time.Minute)
	// Tactics as a host might list them, out of matrix order: the page
	// orders them.
	main := store.Incident{IncidentID: "inc-main", FirstSeen: at, LastSeen: at.Add(time.Second), Score: 11.05,
		Severity: "high", Tactics: []string{"defense-evasion", "execution"}, Techniques: []string{"T1218.005", "T1059.001"},
		HitCount: 2, RootPID: 10980, RootPath: `C:\Windows\System32\mshta.exe`, Summary: "mshta.exe: 2 hit(s)",
		HitIDs: []string{"hit-a", "hit-b", "hit-c"}, Reported: now}
	node := func(key, parent string, depth int, pid int64, path, cmd string, hits int64, sev string, techs, tactics []string) store.IncidentNode {
		return store.IncidentNode{IncidentID: "inc-main", ProcessKey: key, ParentKey: parent, Depth: depth, PID: pid,
			Path: path, Cmdline: cmd, Username: `LAB\wardog`, Start: at.Add(time.Duration(depth) * time.Second),
			HitCount: hits, Severity: sev, Techniques: techs, Tactics: tactics, Reported: now}
	}
	batch := &store.LogBatch{
		Detections: []store.Detection{
			{Query: "quarry_ioa_hits", Hit: telemetry.Hit{HitID: "hit-a", TechniqueID: "T1218.005", Tactic: "defense-evasion", Severity: "high", Time: at, EID: 4, PID: 10980,
				RuleTitle: "Mshta inline script", Path: `C:\Windows\System32\mshta.exe`}},
			{Query: "quarry_ioa_hits", Hit: telemetry.Hit{HitID: "hit-b", TechniqueID: "T1059.001", Tactic: "execution", Severity: "medium", Time: at.Add(time.Second), EID: 30,
				PID: 9572, RuleTitle: "PowerShell from mshta", Path: "powershell.exe"}},
			// An IoC hit: an intel indicator in PowerShell's connection.
			{Query: "quarry_ioa_hits", Hit: telemetry.Hit{HitID: "hit-c", TechniqueID: telemetry.Untagged, Severity: "high", Time: at.Add(time.Second), EID: 33, PID: 9572,
				RuleTitle: "IOC 203.0.113.9", RuleSource: telemetry.RuleSourceIntel, Path: "powershell.exe"}},
		},
		Incidents: []store.Incident{main},
		IncidentNodes: []store.IncidentNode{
			node("k-cmd", "", 0, 5888, `C:\Windows\System32\cmd.exe`, "cmd.exe /c start", 0, "", nil, nil),
			node("k-mshta", "k-cmd", 1, 10980, `C:\Windows\System32\mshta.exe`, `mshta vbscript:Execute("x")`, 1, "high",
				[]string{"T1218.005"}, []string{"defense-evasion"}),
			node("k-psh", "k-mshta", 2, 9572, `C:\Windows\System32\powershell.exe`, "powershell -noexit -command Get-Service <b>", 1, "medium",
				[]string{"T1059.001"}, []string{"execution"}),
			node("k-conhost", "k-psh", 3, 10164, `C:\Windows\System32\conhost.exe`, "conhost.exe 0xffffffff", 0, "", nil, nil),
		},
	}
	// What PowerShell did: five connections, the first hit by a rule, and
	// a file.
	batch.IncidentNodes[2].Activity = `{"network":{"count":5,"items":[` +
		`{"time":` + itoa(at.Unix()) + `,"summary":"connect tcp 10.0.0.5:50000 -> 203.0.113.7:443","eid":31,"techniques":["T1071"],"severity":"critical"},` +
		`{"time":` + itoa(at.Unix()) + `,"summary":"connect tcp 10.0.0.5:50001 -> 203.0.113.8:443","eid":32},` +
		`{"time":` + itoa(at.Unix()) + `,"summary":"connect tcp 10.0.0.5:50002 -> 203.0.113.9:443","eid":33,"severity":"high","iocs":["IOC 203.0.113.9"]}]},` +
		`"file":{"count":1,"items":[{"time":` + itoa(at.Unix()) + `,"summary":"create C:\\Users\\Public\\x.ps1","eid":34}]}}`
	if err := f.st.AppendLogs(ctx, h.ID, batch); err != nil {
		t.Fatal(err)
	}
	// 55 weaker incidents on the other host, for paging and filters.
	var weak []store.Incident
	for i := range 55 {
		weak = append(weak, store.Incident{IncidentID: fmt.Sprintf("inc-weak-%02d", i), FirstSeen: now.Add(-48 * time.Hour),
			LastSeen: now.Add(-47 * time.Hour), Score: 2 + float64(i)/100, Severity: "low", Tactics: []string{"discovery"},
			Techniques: []string{"T1082"}, HitCount: 1, RootPath: "/bin/sh", Reported: now})
	}
	if err := f.st.AppendLogs(ctx, o.ID, &store.LogBatch{Incidents: weak}); err != nil {
		t.Fatal(err)
	}
	ins, _, err := f.st.Incidents(ctx, store.IncidentFilter{IncidentIDs: []string{"inc-main"}})
	if err != nil || len(ins) != 1 {
		t.Fatalf("stored incident: %v %v", ins, err)
	}
	c := client(t)
	signIn(t, c, f.srv.URL, f.token)

	rowLinks := regexp.MustCompile(`class="rowlink" href="/incidents/(\d+)"`)
	resp, body := get(t, c, f.srv.URL+"/incidents")
	links := rowLinks.FindAllStringSubmatch(body, -1)
	if resp.StatusCode != http.StatusOK || len(links) != 50 || links[0][1] != itoa(ins[0].ID) ||
		!strings.Contains(body, "56 matching") || !strings.Contains(body, `href="/incidents?page=2"`) ||
		!strings.Contains(body, `data-key="i"`) {
		t.Fatalf("incidents page 1: %s, %d rows, first %v", resp.Status, len(links), links[:min(1, len(links))])
	}
	// Matrix order in the list too: Execution before Defense Evasion.
	if i, j := strings.Index(body, "Execution → Defense Evasion"), strings.Index(body, "Defense Evasion → Execution"); i < 0 || j >= 0 {
		t.Errorf("incidents list: tactics not in matrix order")
	}
	for _, tc := range []struct {
		query string
		rows  int
		want  string
	}{
		{"page=2", 6, "51–56"},
		{"host=ws-1", 1, "mshta.exe"},
		{"host=ws-2&min_score=2.5", 5, "5 matching"},
		{"host=ws-2.lab", 0, "unknown host: ws-2.lab"},
		{"since=24h", 1, "mshta.exe"},
		{"until=24h", 50, "55 matching"},
		{"host=nowhere", 0, "unknown host: nowhere"},
		{"min_score=lots", 50, "bad minimum score"},
	} {
		resp, body := get(t, c, f.srv.URL+"/incidents?"+tc.query)
		if n := len(rowLinks.FindAllString(body, -1)); resp.StatusCode != http.StatusOK || n != tc.rows || !strings.Contains(body, tc.want) {
			t.Errorf("/incidents?%s: %s, %d rows, want %d and %q", tc.query, resp.Status, n, tc.rows, tc.want)
		}
	}

	resp, body = get(t, c, f.srv.URL+"/incidents/"+itoa(ins[0].ID))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("incident page: %s", resp.Status)
	}
	graph := body[strings.Index(body, `id="graph"`):strings.Index(body, "<h2>Hits</h2>")]
	// Nesting: each process inside its parent's list, in chain order.
	order := []string{"cmd.exe", "mshta.exe", "powershell.exe", "conhost.exe"}
	last := -1
	for _, p := range order {
		i := strings.Index(graph, `<span class="pname">`+p+`</span>`)
		if i <= last {
			t.Fatalf("graph: %s missing or out of order", p)
		}
		last = i
	}
	if d := strings.Count(graph, "<ul>"); d != 4 {
		t.Errorf("graph: %d nested lists, want 4 (a chain of four processes)", d)
	}
	// The IoC hit: its own badge on the activity, linked to its detection,
	// and no technique badge ("untagged") for it.
	if !regexp.MustCompile(`<a class="tbadge ioc" href="/detections/\d+"[^>]*>IOC 203\.0\.113\.9</a>`).MatchString(graph) {
		t.Errorf("graph lacks the IoC badge")
	}
	if strings.Contains(graph, ">untagged<") {
		t.Errorf("graph shows the IoC hit as an untagged technique")
	}
	for _, w := range []string{`class="tbadge sev-high"`, ">T1218.005</a>", `class="tbadge sev-medium"`, ">T1059.001</a>",
		`LAB\wardog`, "Get-Service &lt;b&gt;", "pid 9572", "mshta vbscript:Execute(&#34;x&#34;)"} {
		if !strings.Contains(graph, w) {
			t.Errorf("graph lacks %q", w)
		}
	}
	// PowerShell's activity under its node: the kinds with their counts,
	// the connection's badge by severity, the rest collapsed.
	psh := graph[strings.Index(graph, `<span class="pname">powershell.exe</span>`):strings.Index(graph, `<span class="pname">conhost.exe</span>`)]
	for _, w := range []string{`<details class="activity" open><summary><span class="akind">network</span> <span class="muted">5</span><span class="tbadge sev-critical"`,
		"connect tcp 10.0.0.5:50000 -&gt; 203.0.113.7:443<span class=\"tbadge sev-critical\" title=\"critical · Application Layer Protocol\">T1071</span>",
		`<div class="muted">+2 more</div>`, `<details class="activity"><summary><span class="akind">file</span> <span class="muted">1</span></summary>`,
		`create C:\Users\Public\x.ps1`} {
		if !strings.Contains(psh, w) {
			t.Errorf("PowerShell's node lacks %q:\n%s", w, psh)
		}
	}
	if strings.Count(graph, `class="activity"`) != 2 {
		t.Errorf("graph: %d activity kinds, want PowerShell's 2", strings.Count(graph, `class="activity"`))
	}
	chain := body[strings.Index(body, `id="chain"`):strings.Index(body, `id="graph"`)]
	ex, de := strings.Index(chain, "Execution"), strings.Index(chain, "Defense Evasion")
	if ex < 0 || de < 0 || ex > de {
		t.Errorf("chain not in matrix order: %q", chain)
	}
	for _, w := range []string{"Mshta inline script", "PowerShell from mshta", "score 11.05", "inc-main", `id="inc-around"`} {
		if !strings.Contains(body, w) {
			t.Errorf("incident page lacks %q", w)
		}
	}
	for _, p := range []string{"/incidents/99999", "/incidents/x"} {
		if resp, _ := get(t, c, f.srv.URL+p); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %s, want 404", p, resp.Status)
		}
	}
}
