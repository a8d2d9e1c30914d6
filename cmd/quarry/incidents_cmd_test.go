package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quarry-sec/quarry/detections/packs"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

var chainRecording = filepath.Join("testdata", "incidents", "chain.json")

func importChain(t *testing.T, dir string, extra ...string) string {
	t.Helper()
	out, errs, code := quarry(t, dir, "", append(append([]string{"import", "-q"}, extra...), chainRecording)...)
	if code != 0 {
		t.Fatalf("import: exit %d: %s%s", code, out, errs)
	}
	return out
}

func incidentLines(t *testing.T, dir string) []incidentJSON {
	t.Helper()
	out, errs, code := quarry(t, dir, "", "incidents", "--format", "json")
	if code != 0 {
		t.Fatalf("incidents: exit %d: %s", code, errs)
	}
	var list []incidentJSON
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var in incidentJSON
		if err := json.Unmarshal([]byte(line), &in); err != nil {
			t.Fatalf("line does not parse: %v\n%s", err, line)
		}
		list = append(list, in)
	}
	return list
}

func TestImportDetectsAndGroupsIncidents(t *testing.T) {
	dir := t.TempDir()
	out := importChain(t, dir)
	// Nine rule hits (the PowerShell cradle is reported as a cradle, as a
	// hidden inline command with -nop, as a fetch from a bare public IP and,
	// started by Explorer, as a paste-and-run lure; cmd's and certutil's
	// command lines also fetch from that IP) and the builtin correlation
	// "Office Application Started a Shell, Then Persistence Was Created"
	// (critical).
	if !strings.Contains(out, "detection: 10 hit(s) (1 critical, 7 high, 2 medium); 2 incident(s)") {
		t.Errorf("import summary:\n%s", out)
	}
	list := incidentLines(t, dir)
	if len(list) != 2 {
		t.Fatalf("want 2 incidents, got %+v", list)
	}
	word, ps := list[0], list[1]
	if word.HitCount != 6 || len(word.Hits) != 6 || word.RootPID != 5000 || !strings.HasSuffix(word.RootPath, `\WINWORD.EXE`) ||
		word.HostIdentifier != "LAB-WS1" || word.Severity != "critical" {
		t.Errorf("Word incident: %+v", word)
	}
	for _, tech := range []string{"T1566.001", "T1105", "T1053.005"} {
		if !strings.Contains(word.Techniques, tech) {
			t.Errorf("Word incident's techniques %s lack %s", word.Techniques, tech)
		}
	}
	if !strings.HasPrefix(word.Tactics, "initial-access,execution,persistence") {
		t.Errorf("tactics not in matrix order: %s", word.Tactics)
	}
	pids := map[int64]bool{}
	correlation := 0
	for _, h := range word.Hits {
		pids[h.PID] = true
		if h.RuleSource == "correlation" {
			correlation++
		}
		if h.HitID == "" || len(h.Techniques) == 0 || h.RuleTitle == "" {
			t.Errorf("hit lacks fields: %+v", h)
		}
	}
	if !pids[5100] || !pids[5200] || !pids[5300] {
		t.Errorf("Word incident's hits should be cmd, certutil and schtasks: %v", pids)
	}
	if correlation != 1 {
		t.Errorf("Word incident should hold the correlation hit: %+v", word.Hits)
	}
	// The PowerShell cradle reuses cmd's pid 5100 but is another process
	// under Explorer (a boundary): an incident of its own, ranked lower.
	if ps.HitCount != 4 || ps.RootPID != 5100 || !strings.HasSuffix(ps.RootPath, `\powershell.exe`) || ps.Score >= word.Score {
		t.Errorf("PowerShell incident: %+v", ps)
	}

	// Both run as LAB\alice five minutes apart: related, not merged.
	if len(word.Related) != 1 || word.Related[0] != (relatedJSON{IncidentID: ps.IncidentID, HostIdentifier: "LAB-WS1", Indicator: "user", Value: `LAB\alice`}) {
		t.Errorf("Word incident's related: %+v", word.Related)
	}

	table, _, code := quarry(t, dir, "", "incidents")
	if code != 0 || !strings.Contains(table, "WINWORD.EXE (5000)") || !strings.Contains(table, "2 incident(s)") ||
		strings.Index(table, word.IncidentID) > strings.Index(table, ps.IncidentID) {
		t.Errorf("incidents table (exit %d):\n%s", code, table)
	}
	if out, _, _ := quarry(t, dir, "", "incidents", "--since", "2026-03-02T09:01:00Z", "--format", "json"); strings.Count(out, "\n") != 1 ||
		!strings.Contains(out, ps.IncidentID) {
		t.Errorf("--since keeps only the later incident:\n%s", out)
	}
	// Both engines' tables: the embedded engine here.
	q, errs, code := quarry(t, dir, "", "query", "--format", "csv",
		"SELECT i.root_pid, count(*) FROM incidents i JOIN incident_hits ih USING (incident_id) GROUP BY i.incident_id ORDER BY 1")
	if code != 0 || q != "root_pid,count(*)\n5000,6\n5100,4\n" {
		t.Errorf("query (exit %d, %s):\n%s", code, errs, q)
	}
}

func TestTreeCommand(t *testing.T) {
	dir := t.TempDir()
	importChain(t, dir)
	list := incidentLines(t, dir)
	out, errs, code := quarry(t, dir, "", "tree", "--incident", list[0].IncidentID)
	if code != 0 {
		t.Fatalf("tree: exit %d: %s", code, errs)
	}
	want := []string{
		`C:\Windows\explorer.exe  [pid 4000, not recorded]`,
		`└─ ▶ "C:\Program Files\Microsoft Office\root\Office16\WINWORD.EXE" /n`,
		`   └─ cmd.exe /c certutil`,
		`[pid 5100, LAB\alice, 2026-03-02 09:00:05, exited 09:00:11]  high T1059.003 T1105 T1204.002 T1566.001 (initial-access, execution, command-and-control) 2 hit(s)`,
		`      ├─ certutil -urlcache`,
		`high T1105 (command-and-control) 2 hit(s)`,
		`      └─ schtasks /create`,
		// Its own hit (medium) and the correlation's (critical).
		`critical T1053.005 T1059.003 T1204.002 T1543.003 T1547.001 T1566.001 (initial-access, execution, persistence, privilege-escalation) 2 hit(s)`,
	}
	at := 0
	for _, w := range want {
		i := strings.Index(out[at:], w)
		if i < 0 {
			t.Fatalf("tree lacks %q after offset %d:\n%s", w, at, out)
		}
		at += i + len(w)
	}
	if strings.Contains(out, "\x1b[") {
		t.Errorf("colour codes when stdout is not a terminal:\n%q", out)
	}
	if out, _, _ := quarry(t, dir, "", "tree", "--color", "always", "--incident", list[0].IncidentID); !strings.Contains(out, "\x1b[31m  high") ||
		!strings.Contains(out, "\x1b[1;31m  critical") {
		t.Errorf("--color always: severities not coloured:\n%q", out)
	}
	// pid 5100 was two processes: two trees.
	out, _, code = quarry(t, dir, "", "tree", "5100", "--host", "LAB-WS1")
	if code != 0 || strings.Count(out, "host LAB-WS1, process g:") != 2 || !strings.Contains(out, "▶ powershell -nop") {
		t.Errorf("tree 5100 (exit %d):\n%s", code, out)
	}
	if _, errs, code := quarry(t, dir, "", "tree", "99999"); code != 1 || !strings.Contains(errs, "no stored start of process 99999") {
		t.Errorf("unknown pid: exit %d, %s", code, errs)
	}
	if _, errs, code := quarry(t, dir, "", "tree", "--incident", "nope"); code != 1 || !strings.Contains(errs, "no incident nope") {
		t.Errorf("unknown incident: exit %d, %s", code, errs)
	}
	if _, _, code := quarry(t, dir, "", "tree"); code != 2 {
		t.Errorf("tree without PID or --incident: exit %d, want 2", code)
	}
	if _, _, code := quarry(t, dir, "", "tree", "abc"); code != 2 {
		t.Errorf("tree abc: exit %d, want 2", code)
	}
}

// The same recording gives the same incidents: in another data directory,
// imported twice, or imported without detection and then scanned.
func TestIncidentsDeterministic(t *testing.T) {
	a := t.TempDir()
	importChain(t, a)
	want := incidentLines(t, a)
	same := func(what string, got []incidentJSON) {
		t.Helper()
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		if string(g) != string(w) {
			t.Errorf("%s:\n got %s\nwant %s", what, g, w)
		}
	}
	b := t.TempDir()
	importChain(t, b)
	same("another data directory", incidentLines(t, b))
	importChain(t, a)
	same("imported twice", incidentLines(t, a))

	c := t.TempDir()
	out := importChain(t, c, "--no-detect")
	if strings.Contains(out, "detection:") || len(incidentLines(t, c)) != 0 {
		t.Fatalf("--no-detect detected:\n%s", out)
	}
	if _, errs, code := quarry(t, c, "", "scan", "--store", "-q"); code != 0 {
		t.Fatalf("scan --store: exit %d: %s", code, errs)
	}
	// scan --store runs the same rules, correlations included, over the
	// same events (same eids): the same incidents.
	same("--no-detect, then scan --store", incidentLines(t, c))
	// and leaves no mark for a later refresh to regroup them again.
	st, err := eventstore.Open(eventstore.Path(c))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if pend, err := st.PendingIncidents(context.Background()); err != nil || len(pend) != 0 {
		t.Errorf("after scan --store: %d pending incident marks, %v", len(pend), err)
	}
}

// A store whose hits have no incidents (written before incidents existed)
// gets a hint, and --rebuild groups them into the same incidents.
func TestIncidentsRebuild(t *testing.T) {
	dir := t.TempDir()
	importChain(t, dir)
	want := incidentLines(t, dir)
	st, err := eventstore.Open(eventstore.Path(dir))
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(want))
	for i, in := range want {
		ids[i] = in.IncidentID
	}
	if err := st.ReplaceIncidents(context.Background(), ids, nil); err != nil {
		t.Fatal(err)
	}
	st.Close()
	out, errs, code := quarry(t, dir, "", "incidents")
	if code != 0 || !strings.Contains(out, "no incidents") || !strings.Contains(errs, "--rebuild") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if _, errs, code := quarry(t, dir, "", "incidents", "--rebuild"); code != 0 || !strings.Contains(errs, "regrouped 10 hit(s) into 2 incident(s)") {
		t.Fatalf("--rebuild: exit %d, %s", code, errs)
	}
	got, _ := json.Marshal(incidentLines(t, dir))
	w, _ := json.Marshal(want)
	if string(got) != string(w) {
		t.Errorf("rebuilt:\n got %s\nwant %s", got, w)
	}
}

// Under each process, tree lists what it did: certutil's connection badged
// with its hit's techniques, its file creations collapsed beyond three.
func TestTreeShowsActivity(t *testing.T) {
	dir := t.TempDir()
	if out, errs, code := quarry(t, dir, "", "import", "-q", filepath.Join("testdata", "incidents", "activity.json")); code != 0 {
		t.Fatalf("import: exit %d: %s%s", code, out, errs)
	}
	out, errs, code := quarry(t, dir, "", "tree", "5200", "--color", "never")
	if code != 0 {
		t.Fatalf("tree: exit %d: %s", code, errs)
	}
	want := []string{
		`└─ ▶ certutil -urlcache`,
		`high T1105 (command-and-control) 3 hit(s)`,
		"\n           file:           create C:\\Users\\Public\\part0.bin\n",
		"create C:\\Users\\Public\\part2.bin  (+2 more)\n",
		"           network:        connect tcp 10.0.0.5:50000 -> 198.51.100.7:80 [T1105]\n",
	}
	at := 0
	for _, w := range want {
		i := strings.Index(out[at:], w)
		if i < 0 {
			t.Fatalf("tree lacks %q after offset %d:\n%s", w, at, out)
		}
		at += i + len(w)
	}
	if strings.Contains(out, "part3.bin") {
		t.Errorf("more than 3 file events listed:\n%s", out)
	}
	if out, _, _ := quarry(t, dir, "", "tree", "5200", "--color", "always"); !strings.Contains(out, "\x1b[31m [T1105]") {
		t.Errorf("--color always: badge not coloured by severity:\n%q", out)
	}
	// The detection pack sends the connection's hits, with the acting
	// process as their pid and path, and certutil's node with its activity.
	pack := packs.Detection()
	out, errs, code = quarry(t, dir, "", "query", "--format", "json", pack.Queries[packs.QueryHits].Query)
	if code != 0 {
		t.Fatalf("pack hits query: exit %d: %s", code, errs)
	}
	var hits []map[string]any
	if err := json.Unmarshal([]byte(out), &hits); err != nil {
		t.Fatalf("pack hits query: %v\n%s", err, out)
	}
	socket := 0
	for _, h := range hits {
		if fmt.Sprint(h["eid"]) == "4" { // the connection (Sysmon 3), after the three starts
			socket++
			if fmt.Sprint(h["pid"]) != "5200" || h["path"] != `C:\Windows\System32\certutil.exe` {
				t.Errorf("hit on the connection: pid %v path %v, want certutil's", h["pid"], h["path"])
			}
		}
	}
	// One row a technique: the outbound-LOLBin rule's certutil branch is
	// T1105 alone (search_tags; its proxy-execution techniques belong to
	// the other binaries' branches).
	if socket != 1 {
		t.Errorf("pack hits query: %d rows of the connection's hit, want 1 (T1105):\n%s", socket, out)
	}
	out, errs, code = quarry(t, dir, "", "query", "--format", "json", pack.Queries[packs.QueryIncidentTree].Query)
	if code != 0 || !strings.Contains(out, `"activity"`) || !strings.Contains(out, `198.51.100.7:80`) {
		t.Errorf("pack incident tree query: exit %d %s\n%s", code, errs, out)
	}
}
