package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// quarry runs the command line in-process with its own data directory.
func quarry(t *testing.T, dataDir, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(append([]string{"--data-dir", dataDir}, args...), strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

func TestQueryFormats(t *testing.T) {
	dir := t.TempDir()
	sql := "SELECT id, shortname, matrix_order FROM attack_tactics WHERE attack_version = '18.1' ORDER BY matrix_order"

	out, errs, code := quarry(t, dir, "", "query", "--format", "json", sql)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("json output does not parse: %v\n%s", err, out)
	}
	if len(rows) != 14 {
		t.Fatalf("want 14 v18.1 tactics, got %d", len(rows))
	}
	if rows[0]["shortname"] != "reconnaissance" || rows[13]["shortname"] != "impact" {
		t.Fatalf("matrix order wrong: first %v, last %v", rows[0], rows[13])
	}
	if _, isNum := rows[0]["matrix_order"].(float64); !isNum {
		t.Fatalf("matrix_order should be a JSON number, got %T", rows[0]["matrix_order"])
	}

	out, _, code = quarry(t, dir, "", "query", "--format", "csv", sql)
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if code != 0 || err != nil || len(recs) != 15 || recs[0][1] != "shortname" || recs[1][0] != "TA0043" {
		t.Fatalf("csv: exit %d err %v recs %v", code, err, recs)
	}

	out, _, code = quarry(t, dir, "", "query", "--format", "line", "SELECT id, name FROM attack_tactics WHERE id = 'TA0002'")
	if code != 0 || !strings.Contains(out, "  id = TA0002\nname = Execution\n") {
		t.Fatalf("line: exit %d\n%s", code, out)
	}

	out, _, code = quarry(t, dir, "", "query", "SELECT id, name FROM attack_tactics WHERE id = 'TA0002'")
	want := "+--------+-----------+\n| id     | name      |\n+--------+-----------+\n| TA0002 | Execution |\n+--------+-----------+\n"
	if code != 0 || out != want {
		t.Fatalf("table: exit %d\n%s\nwant\n%s", code, out, want)
	}
}

// TestJoinTechniquesTacticsMitigations is the investigation join an analyst
// writes: a technique with its tactics and the mitigations for it.
func TestJoinTechniquesTacticsMitigations(t *testing.T) {
	sql := `SELECT t.id, t.name, ta.shortname AS tactic, m.id AS mitigation, m.name AS mitigation_name
	FROM attack_techniques t
	JOIN attack_technique_tactics tt ON tt.technique_id = t.id
	JOIN attack_tactics ta ON ta.id = tt.tactic_id AND ta.shortname = tt.tactic
	JOIN attack_technique_mitigations tm ON tm.technique_id = t.id
	JOIN attack_mitigations m ON m.id = tm.mitigation_id
	WHERE t.id = 'T1003.001'
	ORDER BY m.id`
	out, errs, code := quarry(t, t.TempDir(), "", "query", "--format", "json", sql)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatal(err)
	}
	mitigations := map[string]bool{}
	for _, r := range rows {
		if r["tactic"] != "credential-access" || r["name"] != "LSASS Memory" {
			t.Fatalf("unexpected row %v", r)
		}
		mitigations[r["mitigation"].(string)] = true
	}
	// LSASS Memory is mitigated by Credential Access Protection (M1043) and
	// Privileged Account Management (M1026), among others.
	if !mitigations["M1043"] || !mitigations["M1026"] || len(mitigations) < 4 {
		t.Fatalf("mitigations of T1003.001: %v", mitigations)
	}

	// Hunting by tactic across the join: every technique of a tactic.
	out, errs, code = quarry(t, t.TempDir(), "", "query", "--format", "csv",
		`SELECT count(*) FROM attack_techniques t JOIN attack_technique_tactics tt ON tt.technique_id = t.id
		 WHERE tt.tactic = 'credential-access' AND t.revoked = 0 AND t.deprecated = 0 AND t.attack_version = '18.1'`)
	if code != 0 || strings.TrimSpace(strings.Split(out, "\n")[1]) == "0" {
		t.Fatalf("count by tactic: exit %d %s %s", code, out, errs)
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"invalid SQL", []string{"query", "SELECT id\nFROM attack_tactics WHER id = 1"}, 1,
			[]string{`near "id": syntax error at line 2, column 26`, "^"}},
		{"unknown table", []string{"query", "SELECT * FROM attack_technique"}, 1,
			[]string{"no such table: attack_technique", "did you mean attack_techniques"}},
		{"write", []string{"query", "DELETE FROM attack_techniques"}, 1, []string{"read-only"}},
		{"write via CTE", []string{"query", "WITH x AS (SELECT 1) INSERT INTO attack_tactics(id) SELECT * FROM x"}, 1, []string{"read-only"}},
		{"bad format", []string{"query", "--format", "xml", "SELECT 1"}, 2, []string{`unknown format "xml"`}},
		{"no SQL", []string{"query"}, 2, []string{"give the SQL"}},
		{"unknown technique", []string{"attack", "show", "T9999"}, 1, []string{"no technique T9999"}},
		{"unknown flag", []string{"query", "--nope", "SELECT 1"}, 2, []string{"unknown flag"}},
	}
	for _, c := range cases {
		_, errs, code := quarry(t, dir, "", c.args...)
		if code != c.code {
			t.Errorf("%s: exit %d, want %d (%s)", c.name, code, c.code, errs)
		}
		for _, w := range c.want {
			if !strings.Contains(errs, w) {
				t.Errorf("%s: stderr %q lacks %q", c.name, errs, w)
			}
		}
		if strings.Contains(errs, "panic") {
			t.Errorf("%s: panicked: %s", c.name, errs)
		}
	}
}

func TestAttackUpdateRefusesBadSTIXAndKeepsData(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(t.TempDir(), "bad.json")
	for _, content := range []string{
		`{"type": "bundle", "objects": [`,                      // truncated
		`{"type": "report", "id": "x"}`,                        // not a bundle
		`{"type": "bundle", "id": "bundle--1", "objects": []}`, // no ATT&CK objects
	} {
		if err := os.WriteFile(bad, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, errs, code := quarry(t, dir, "", "attack", "update", "--stix", bad)
		if code != 1 || !strings.Contains(errs, bad) {
			t.Errorf("update with %q: exit %d, stderr %q (want exit 1 naming the file)", content, code, errs)
		}
	}
	out, _, code := quarry(t, dir, "", "attack", "info")
	if code != 0 || !strings.Contains(out, "ATT&CK Enterprise 18.1") || !strings.Contains(out, "techniques 691") {
		t.Fatalf("after failed updates the embedded data should stay in use: %s", out)
	}
}

func TestShellScript(t *testing.T) {
	script := `.tables attack_tac
.schema attack_tactics
.mode csv
SELECT id,
       shortname
FROM attack_tactics
WHERE id = 'TA0002';
.mode line
SELECT name FROM attack_tactics WHERE id = 'TA0040';
`
	out, errs, code := quarry(t, t.TempDir(), script, "shell")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{
		"  => attack_tactics\n",
		"CREATE TABLE attack_tactics(`id` TEXT, `shortname` TEXT",
		"id,shortname\nTA0002,execution\n",
		"name = Impact\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("shell output lacks %q:\n%s", want, out)
		}
	}

	_, errs, code = quarry(t, t.TempDir(), "SELECT * FROM nope;\n", "shell")
	if code != 1 || !strings.Contains(errs, "no such table: nope") {
		t.Fatalf("a failing script should exit 1 with the error: %d %s", code, errs)
	}
}

func TestStatementComplete(t *testing.T) {
	for sql, want := range map[string]bool{
		"SELECT 1;":                  true,
		"SELECT 1":                   false,
		"SELECT ';'":                 false,
		"SELECT 'it''s';":            true,
		"SELECT 1 -- done;":          false,
		"SELECT 1; -- done":          true,
		"SELECT /* ; */ 1":           false,
		"SELECT \"a;b\" FROM t;\n  ": true,
	} {
		if got := statementComplete(sql); got != want {
			t.Errorf("statementComplete(%q) = %v, want %v", sql, got, want)
		}
	}
}

func TestImport(t *testing.T) {
	dir := t.TempDir()
	src := "../../telemetry/importers/testdata/security-datasets/"
	// A copy of the Sysmon excerpt with a broken line in the middle.
	good, err := os.ReadFile(src + "bitsadmin-excerpt.json")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(good), "\n")
	broken := filepath.Join(t.TempDir(), "broken.json")
	mid := len(lines) / 2
	withBad := strings.Join(lines[:mid], "") + "{\"EventID\": 1, \"Image\": \n" + strings.Join(lines[mid:], "")
	if err := os.WriteFile(broken, []byte(withBad), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errs, code := quarry(t, dir, "", "import", "--host", "lab1", broken, src+"arp-cache.log")
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errs)
	}
	if !strings.Contains(out, "skipped 1:") || !strings.Contains(out, fmt.Sprintf("broken.json:%d", mid+1)) {
		t.Fatalf("the broken line should be reported with its number:\n%s", out)
	}
	out, errs, code = quarry(t, dir, "", "query", "--format", "csv",
		"SELECT source, host_identifier, path, cmdline FROM process_events WHERE syscall = 'execve' AND (path LIKE '%bitsadmin.exe' OR path = '/usr/sbin/arp') ORDER BY source")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "auditd,lab1,/usr/sbin/arp,arp -a\n") || !strings.Contains(out, "bitsadmin.exe  /transfer") {
		t.Fatalf("imported process events not queryable:\n%s", out)
	}

	// A file in no known format: named, exit 1, the other files still imported.
	junk := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(junk, []byte("hello\n"), 0o600)
	out, errs, code = quarry(t, t.TempDir(), "", "import", junk, src+"arp-cache.log")
	if code != 1 || !strings.Contains(errs, "notes.txt") || !strings.Contains(out, "imported 1 file(s)") {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errs)
	}
}

func TestScanAndRules(t *testing.T) {
	dir := t.TempDir()
	src := "../../telemetry/importers/testdata/security-datasets/bitsadmin-excerpt.json"
	out, errs, code := quarry(t, dir, "", "scan", "--format", "json", "--no-builtin", "--rules", "testdata/rules/bits_custom.yml", src)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var hit map[string]any
	first := strings.SplitN(out, "\n", 2)[0]
	if err := json.Unmarshal([]byte(first), &hit); err != nil {
		t.Fatalf("not a JSON line: %q", first)
	}
	if hit["rule_author"] != "Test Analyst" || hit["rule_source"] != "custom" || hit["technique_id"] != "T1197" ||
		hit["technique_name"] != "BITS Jobs" || hit["severity"] != "high" || hit["source_file"] != src {
		t.Fatalf("hit fields: %v", hit)
	}
	if !strings.Contains(errs, "by technique (ATT&CK 18.1):") {
		t.Fatalf("summary should go to stderr with --format json: %s", errs)
	}

	// The builtin pack finds the attack step too, and the layer lists it.
	layer := filepath.Join(t.TempDir(), "layer.json")
	out, errs, code = quarry(t, dir, "", "scan", "--layer", layer, src)
	if code != 0 || !strings.Contains(out, "File Transfer with bitsadmin") || !strings.Contains(out, "Quarry team") {
		t.Fatalf("builtin scan: exit %d\n%s\n%s", code, out, errs)
	}
	// Table rows are kept until the end of the scan, while the importer
	// reuses each event's strings for the next record: both hits keep
	// their own host and command line.
	rows := 0
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "WORKSTATION5") && strings.Contains(l, "T1197") && strings.Contains(l, "bitsadmin.exe /transfer /Download") {
			rows++
		}
	}
	if rows != 2 {
		t.Fatalf("table rows lost their event's strings:\n%s", out)
	}
	b, _ := os.ReadFile(layer)
	if !strings.Contains(string(b), `"techniqueID": "T1197"`) {
		t.Fatalf("layer lacks T1197: %s", b)
	}

	// A broken rule: named with file and line, exit 1; the good one loads.
	out, _, code = quarry(t, dir, "", "rules", "lint", "testdata/rules")
	if code != 1 || !strings.Contains(out, "broken.yml:10") || !strings.Contains(out, "containz") || !strings.Contains(out, "1 rule(s) loaded, 1 error(s)") {
		t.Fatalf("lint: exit %d\n%s", code, out)
	}
	// ...stops scan and import (exit 1, named)...
	out, errs, code = quarry(t, dir, "", "scan", "--no-builtin", "--rules", "testdata/rules", src)
	if code != 1 || !strings.Contains(errs, "broken.yml:10") || !strings.Contains(errs, "1 rule(s) did not load") {
		t.Fatalf("scan with a broken rule: exit %d, want 1\n%s\n%s", code, out, errs)
	}
	_, errs, code = quarry(t, dir, "", "import", "--no-builtin", "--rules", "testdata/rules", src)
	if code != 1 || !strings.Contains(errs, "1 rule(s) did not load") {
		t.Fatalf("import with a broken rule: exit %d, want 1\n%s", code, errs)
	}
	// ...unless --skip-bad-rules, which runs the others.
	out, errs, code = quarry(t, dir, "", "scan", "--skip-bad-rules", "--no-builtin", "--rules", "testdata/rules", src)
	if code != 0 || !strings.Contains(errs, "1 rule(s) did not load") || !strings.Contains(out, "Analyst rule") {
		t.Fatalf("scan --skip-bad-rules with a broken rule: exit %d\n%s\n%s", code, out, errs)
	}
}

// TestRulesLintEveryError: lint reports each problem of a rule at its own
// line — the level's, the modifier's, the condition's (an unclosed
// parenthesis), an unknown technique at its tag's line.
func TestRulesLintEveryError(t *testing.T) {
	out, _, code := quarry(t, t.TempDir(), "", "rules", "lint", "testdata/badrules")
	for _, want := range []string{
		"error: testdata/badrules/multi.yml:4: level: unknown level",
		"error: testdata/badrules/multi.yml:13: detection.selection.Image|endswith|bogus: unknown modifier",
		"error: testdata/badrules/multi.yml:16: detection.condition: missing )",
		"warning: testdata/badrules/tag.yml:8: tags: technique T9999 unknown",
		"2 file(s): 1 rule(s) loaded, 3 error(s), 1 warning(s)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("lint output lacks %q", want)
		}
	}
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
}

// TestPacksExport: the pack has osquery's shape and every query runs on the
// embedded engine (which serves quarry_process_events as osquery names it).
func TestPacksExport(t *testing.T) {
	dir := t.TempDir()
	out, errs, code := quarry(t, dir, "", "packs", "export")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var pack struct {
		Queries map[string]map[string]any `json:"queries"`
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatal(err)
	}
	for k := range raw {
		switch k {
		case "queries", "platform", "version", "discovery", "shard":
		default:
			t.Errorf("pack key %q is not osquery's", k)
		}
	}
	if err := json.Unmarshal([]byte(out), &pack); err != nil {
		t.Fatal(err)
	}
	if len(pack.Queries) < 4 {
		t.Fatalf("pack has %d queries", len(pack.Queries))
	}
	for name, q := range pack.Queries {
		sql, _ := q["query"].(string)
		interval, _ := q["interval"].(float64)
		removed, hasRemoved := q["removed"].(bool)
		desc, _ := q["description"].(string)
		if sql == "" || interval <= 0 || interval != float64(int(interval)) || !hasRemoved || removed || desc == "" {
			t.Errorf("query %s: bad shape %v", name, q)
		}
		for k := range q {
			switch k {
			case "query", "interval", "description", "platform", "version", "snapshot", "removed", "shard", "value":
			default:
				t.Errorf("query %s: key %q is not osquery's", name, k)
			}
		}
		if _, errs, code := quarry(t, dir, "", "query", sql); code != 0 {
			t.Errorf("query %s does not run on the embedded engine: %s", name, errs)
		}
	}
}

// TestScanCorrelation: the builtin correlation rules run in scan; their
// hits carry rule_source correlation and the techniques of the steps they
// tie together, at any --min-level that keeps them.
func TestScanCorrelation(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{{}, {"--min-level", "high"}} {
		out, errs, code := quarry(t, dir, "", append([]string{"scan", "-f", "json"}, append(args, "testdata/mshta-chain.json")...)...)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		techs := map[string]bool{}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var h map[string]any
			if err := json.Unmarshal([]byte(line), &h); err != nil {
				t.Fatalf("not JSON: %q", line)
			}
			if h["rule_source"] == "correlation" && h["rule_title"] == "Mshta Ran Script Code, Then Started a Shell" {
				techs[h["technique_id"].(string)] = true
				if h["record"].(float64) != 2 || h["rule_author"] != "Quarry team" {
					t.Errorf("correlation hit %v: want record 2 (the event that completed it)", h)
				}
			}
		}
		if !techs["T1218.005"] || !techs["T1059.001"] {
			t.Errorf("%v: correlation techniques %v, want T1218.005 (mshta) and T1059.001 (PowerShell)", args, techs)
		}
	}
}

// --timeout stops a runaway statement with a deadline error (query, and each
// statement of a shell script), instead of running until killed.
func TestQueryTimeout(t *testing.T) {
	dir := t.TempDir()
	endless := "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
	_, errs, code := quarry(t, dir, "", "query", "--timeout", "200ms", endless)
	if code != 1 || !strings.Contains(strings.ToLower(errs), "interrupt") && !strings.Contains(errs, "deadline") {
		t.Fatalf("query: exit %d: %s", code, errs)
	}
	out, errs, code := quarry(t, dir, endless+";\nSELECT 41 + 1 AS answer;\n", "shell", "--timeout", "200ms")
	if code != 1 || !strings.Contains(out, "42") {
		t.Fatalf("shell: exit %d, the statement after the timed-out one should run\n%s\n%s", code, out, errs)
	}
}

// An unknown command, or subcommand of a group such as attack, is a usage
// error (exit 2) pointing to that group's help.
func TestUnknownCommand(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		help string
	}{
		{[]string{"frobnicate"}, "'quarry --help'"},
		{[]string{"attack", "frob"}, "'quarry attack --help'"},
		{[]string{"rules", "frob"}, "'quarry rules --help'"},
	} {
		_, errs, code := quarry(t, dir, "", tc.args...)
		if code != 2 || !strings.Contains(errs, "unknown command") || !strings.Contains(errs, tc.help) {
			t.Errorf("%v: exit %d: %s", tc.args, code, errs)
		}
	}
	if _, errs, code := quarry(t, dir, "", "attack"); code != 0 {
		t.Errorf("attack alone prints its help: exit %d: %s", code, errs)
	}
}

// attack show --json speaks snake_case like the rest; attack layer makes
// the coverage layer without being told.
func TestAttackShowJSONAndLayerDefault(t *testing.T) {
	dir := t.TempDir()
	out, errs, code := quarry(t, dir, "", "attack", "show", "--json", "T1059.001")
	var got map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil {
		t.Fatalf("show: exit %d: %s\n%s", code, errs, out)
	}
	if got["id"] != "T1059.001" || got["parent_id"] != "T1059" || got["is_subtechnique"] != true || got["ID"] != nil {
		t.Fatalf("show --json keys: %v", got)
	}
	if ms, _ := got["mitigations"].([]any); len(ms) == 0 || ms[0].(map[string]any)["source_id"] == nil {
		t.Fatalf("mitigations: %v", got["mitigations"])
	}
	layer := filepath.Join(dir, "layer.json")
	if _, errs, code := quarry(t, dir, "", "attack", "layer", "-o", layer); code != 0 {
		t.Fatalf("layer: exit %d: %s", code, errs)
	}
	if b, err := os.ReadFile(layer); err != nil || !strings.Contains(string(b), `"techniques"`) {
		t.Fatalf("layer file: %v", err)
	}
}

// up's printed commands work where they are pasted: after go run, the
// quarry it names is go run's.
func TestSelfCommand(t *testing.T) {
	got := selfCommand("quarry", func(string) (string, error) { return "", os.ErrNotExist })
	// The test binary lives in go test's temporary build directory, as a
	// go run binary does.
	if got != "go run ./cmd/quarry" {
		t.Fatalf("selfCommand from a go-build binary: %q", got)
	}
	if plural(1, "host") != "1 host" || plural(int64(3), "row") != "3 rows" || plural(0, "error") != "0 errors" {
		t.Fatal("plural")
	}
}

func TestWrap(t *testing.T) {
	got := wrap("Adversaries may abuse PowerShell commands and scripts", 20)
	want := []string{"Adversaries may", "abuse PowerShell", "commands and scripts"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("wrap: %q", got)
	}
	if got := wrap("a b", 0); len(got) != 1 || got[0] != "a b" {
		t.Fatalf("no width: %q", got)
	}
}
