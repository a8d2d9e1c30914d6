package main

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/quarry-sec/quarry/telemetry"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
	"github.com/quarry-sec/quarry/telemetry/host"
)

// TestImportSandboxReports: a CAPE and a Cuckoo report import into the
// ordinary tables (tree, registry), their signatures become hits of the
// sandbox's rules, Quarry's rules match the API-derived events, and each
// run is stored with the techniques of both, its tactics and verdict.
func TestImportSandboxReports(t *testing.T) {
	dir := t.TempDir()
	src := importersTestdata + "sandbox/"
	out, errs, code := quarry(t, dir, "", "--retention-age=-1s", "import", "-q", src+"cape_report.json", src+"cuckoo_report.json")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{
		"sandbox run cape-4711 (cape, sample invoice.exe): verdict malicious, score 8.4; 3 signature hit(s)",
		"sandbox run cuckoo-77 (cuckoo, sample dropper.exe): verdict suspicious, score 6.2; 3 signature hit(s)",
		"registry_events",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}

	// The tree and the registry write are in their tables.
	out, errs, code = quarry(t, dir, "", "query", "--format", "csv",
		"SELECT path, parent_path, process_guid, parent_guid, source FROM process_events WHERE path LIKE '%whoami.exe'")
	if code != 0 || !strings.Contains(out, `C:\Windows\SysWOW64\whoami.exe,C:\Windows\SysWOW64\cmd.exe,cape-4711/3100,cape-4711/3012,sandbox`) {
		t.Errorf("process tree: exit %d\n%s%s", code, out, errs)
	}
	out, _, _ = quarry(t, dir, "", "query", "--format", "csv", "SELECT action, details FROM registry_events WHERE target_object LIKE '%WDigest%'")
	if !strings.Contains(out, "set_value,DWORD (0x00000001)") {
		t.Errorf("registry_events:\n%s", out)
	}
	// detonate --show shows an imported run as it shows a detonation: the
	// verdict, techniques by name, the tree, dropped files, network and
	// signatures.
	for _, format := range []string{"table", "json", "html"} {
		out, errs, code := quarry(t, dir, "", "detonate", "--show", "cape-4711", "--format", format)
		if code != 0 || !strings.Contains(out, "cape-4711") || !strings.Contains(out, "invoice.exe") ||
			!strings.Contains(out, "Modify Registry") || !strings.Contains(out, "injection_createremotethread") {
			t.Errorf("detonate --show of an imported run (%s): exit %d\n%s%s", format, code, out, errs)
		}
		if format == "table" && (!strings.Contains(out, "imported from a cape report") || !strings.Contains(out, "dropped") ||
			!strings.Contains(out, "process tree:")) {
			t.Errorf("detonate --show of an imported run:\n%s", out)
		}
	}
	// The run's tree (sandbox_runs.tree) names its processes by the keys
	// the store gave their events, so it joins process_events.
	out, _, _ = quarry(t, dir, "", "query", "--format", "csv", `SELECT count(*) AS nodes,
  (SELECT count(DISTINCT p.process_key) FROM process_events p WHERE p.process_key IN
    (SELECT json_extract(j.value, '$.process_key') FROM sandbox_runs r, json_each(r.tree) j WHERE r.run_id = 'cape-4711')) AS joined
FROM sandbox_runs r, json_each(r.tree) j WHERE r.run_id = 'cape-4711'`)
	if !strings.Contains(out, "nodes,joined\n3,3") {
		t.Errorf("run tree joined to process_events:\n%s", out)
	}

	st, err := eventstore.Open(eventstore.Path(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	run, ok, err := st.SandboxRun(ctx, "cape-4711")
	if err != nil || !ok {
		t.Fatalf("run cape-4711: %v %v", ok, err)
	}
	// From the report's ttps (T1055, T1070.004, T1547.001) and from the
	// rules matching the API-derived events: WDigest (T1112: ATT&CK files
	// the change under Modify Registry), the paste site lookup (T1102).
	for _, id := range []string{"T1055", "T1070.004", "T1547.001", "T1112", "T1102"} {
		if !slices.Contains(run.Techniques, id) {
			t.Errorf("run techniques %v lack %s", run.Techniques, id)
		}
	}
	// Tactics by ID, as a detonation's run names them.
	if !slices.Contains(run.Tactics, "TA0005") || !slices.Contains(run.Tactics, "TA0003") ||
		run.Verdict != "malicious" || run.Host != host.Identifier() || run.Sample != "invoice.exe" {
		t.Errorf("run: %+v", run)
	}
	// The stored report is the shape every run's is: Quarry's rules that
	// matched beside the report's signatures, its dropped files.
	var sum telemetry.SandboxReport
	if err := json.Unmarshal(run.Report, &sum); err != nil {
		t.Fatalf("report %s: %v", run.Report, err)
	}
	var quarryRules, signatures, dropped int
	for _, r := range sum.Rules {
		switch {
		case r.Source == "builtin" && r.Title == "WDigest Clear-Text Credential Caching Enabled" && r.Author != "" &&
			r.Recommendations != "" && slices.Contains(r.Techniques, "T1112"):
			quarryRules++
		case r.Source == "cape" && r.Severity != "" && r.Hits == 1:
			signatures++
		}
	}
	for _, f := range sum.Files {
		if len(f.Actions) == 1 && f.Actions[0] == "dropped" && len(f.SHA256) == 64 {
			dropped++
		}
	}
	if quarryRules != 1 || signatures == 0 || dropped != 2 || len(sum.Tree) == 0 || len(sum.Network) == 0 || sum.Events == 0 {
		t.Errorf("report: %d Quarry rule, %d signatures, %d dropped, %d roots, %d destinations\n%s",
			quarryRules, signatures, dropped, len(sum.Tree), len(sum.Network), run.Report)
	}
	cuckoo, ok, err := st.SandboxRun(ctx, "cuckoo-77")
	if err != nil || !ok || !slices.Contains(cuckoo.Techniques, "T1547.001") || slices.Contains(cuckoo.Techniques, "T1060") {
		t.Errorf("run cuckoo-77 (T1060 resolved to T1547.001): %+v %v", cuckoo, err)
	}

	// A signature is a hit of the sandbox's rule on the sample's process.
	var hits []telemetry.Hit
	err = st.ScanHits(ctx, eventstore.HitFilter{RuleIDs: []string{"cape:injection_createremotethread"}}, func(h *telemetry.Hit) bool {
		hits = append(hits, *h)
		return true
	})
	if err != nil || len(hits) != 1 {
		t.Fatalf("signature hits: %d, %v", len(hits), err)
	}
	if h := hits[0]; h.RuleSource != "cape" || h.RuleAuthor != "CAPE sandbox" || h.TechniqueID != "T1055" || h.Severity != "high" ||
		h.Source != "sandbox" || !strings.HasSuffix(h.Path, `\invoice.exe`) || h.EID == 0 || h.Host != "win10-cape-01" {
		t.Errorf("signature hit: %+v", h)
	}

	// Imported again: nothing new.
	out, _, code = quarry(t, dir, "", "--retention-age=-1s", "import", "-q", src+"cape_report.json")
	if code != 0 || !strings.Contains(out, "0 stored, 16 already stored") {
		t.Errorf("re-import: exit %d\n%s", code, out)
	}
}
