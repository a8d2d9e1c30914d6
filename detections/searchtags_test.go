package detections

import (
	"slices"
	"strings"
	"testing"
)

// searchTagsRule tags a shell-spawn rule with each shell's own technique
// per search, one technique on every hit, and an optional search that
// adds command obfuscation when it also matches.
const searchTagsRule = `title: Shell Spawned by Office
id: 5b0c2f7e-8d4a-4e61-9a3b-2c7d1e0f4a55
logsource: {product: windows, category: process_creation}
tags:
  - attack.execution
  - attack.t1204.002
  - attack.t1059.001
  - attack.t1059.003
  - attack.defense-evasion
  - attack.t1027.010
search_tags:
  sel_pwsh: [attack.t1059.001]
  sel_cmd: attack.t1059.003
  sel_encoded: [attack.t1027.010]
detection:
  parent:
    ParentImage|endswith: '\winword.exe'
  sel_pwsh:
    Image|endswith: '\powershell.exe'
  sel_cmd:
    Image|endswith: '\cmd.exe'
  sel_encoded:
    CommandLine|contains: ' -enc '
  condition: parent and (sel_pwsh or sel_cmd)
`

func hitIDs(h Hit) (techs, tacs []string) {
	for _, t := range h.Techniques {
		techs = append(techs, t.ID)
	}
	for _, t := range h.Tactics {
		tacs = append(tacs, t.ShortName)
	}
	return techs, tacs
}

// TestSearchTagsNarrowHitTechniques: a hit reports the techniques of the
// searches that matched its event, those no search lists, and the tactics
// of what it reports; the rule keeps all of them.
func TestSearchTagsNarrowHitTechniques(t *testing.T) {
	res, err := LoadBytes("searchtags.yml", []byte(searchTagsRule), Options{Source: SourceBuiltin})
	if err != nil || len(res.Errors) > 0 || len(res.Warnings) > 0 {
		t.Fatalf("load: %v %v %v", err, res.Errors, res.Warnings)
	}
	r := res.Rules[0]
	if len(r.Techniques) != 4 || len(r.Tactics) != 2 {
		t.Fatalf("rule techniques %v tactics %v, want all 4 and 2", r.Techniques, r.Tactics)
	}
	eng := NewEngine(res.Rules)
	for _, c := range []struct {
		image, cmdline string
		techs, tacs    []string
	}{
		{`C:\Windows\System32\cmd.exe`, `cmd.exe /c whoami`, []string{"T1204.002", "T1059.003"}, []string{"execution"}},
		{`C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe`, `powershell.exe -nop -w hidden`, []string{"T1204.002", "T1059.001"}, []string{"execution"}},
		{`C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe`, `powershell.exe -nop -enc SQBFAFgA`, []string{"T1204.002", "T1059.001", "T1027.010"}, []string{"execution", "defense-evasion"}},
	} {
		ev := sysmon1(map[string]string{"Image": c.image, "CommandLine": c.cmdline, "ParentImage": `C:\Program Files\Microsoft Office\root\Office16\WINWORD.EXE`})
		var hits []Hit
		eng.Match(ev, func(h Hit) { hits = append(hits, h) })
		if len(hits) != 1 {
			t.Fatalf("%s: %d hits, want 1", c.cmdline, len(hits))
		}
		techs, tacs := hitIDs(hits[0])
		if !slices.Equal(techs, c.techs) || !slices.Equal(tacs, c.tacs) {
			t.Errorf("%s: hit techniques %v tactics %v, want %v %v", c.cmdline, techs, tacs, c.techs, c.tacs)
		}
	}
}

// TestSearchTagsErrors: search_tags naming no search, a tag the rule does
// not carry, or a tactic fails the rule at its line and field.
func TestSearchTagsErrors(t *testing.T) {
	for _, c := range []struct{ from, to, want string }{
		{"sel_cmd: attack.t1059.003", "sel_bash: attack.t1059.003", `bad.yml:13: search_tags.sel_bash: no search "sel_bash" in the detection`},
		{"sel_cmd: attack.t1059.003", "sel_cmd: attack.t1059.004", "bad.yml:13: search_tags.sel_cmd: attack.t1059.004 is not among the rule's tags"},
		{"sel_encoded: [attack.t1027.010]", "sel_encoded: [attack.defense-evasion]", `bad.yml:14: search_tags.sel_encoded: "attack.defense-evasion" is not a technique tag`},
		{"sel_pwsh: [attack.t1059.001]", "sel_pwsh: {a: b}", "bad.yml:12: search_tags.sel_pwsh: want a list of technique tags"},
	} {
		src := strings.Replace(searchTagsRule, c.from, c.to, 1)
		res, err := LoadBytes("bad.yml", []byte(src), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Errors) != 1 || !strings.Contains(res.Errors[0].Error(), c.want) {
			t.Errorf("%s: errors %v, want one containing %q", c.to, res.Errors, c.want)
		}
	}
}

// TestSearchTagsNeverEmpty: a hit whose matched searches list no technique,
// of a rule with no technique outside search_tags, reports all of the
// rule's techniques rather than none.
func TestSearchTagsNeverEmpty(t *testing.T) {
	// searchTagsRule with every technique listed under a search, and a
	// third child (wscript) that no search tags.
	src := strings.NewReplacer(
		"  - attack.t1204.002\n", "",
		"  - attack.defense-evasion\n  - attack.t1027.010\n", "",
		"  sel_encoded: [attack.t1027.010]\n", "",
		"  condition: parent and (sel_pwsh or sel_cmd)", "  sel_other:\n    Image|endswith: '\\wscript.exe'\n  condition: parent and (sel_pwsh or sel_cmd or sel_other)",
	).Replace(searchTagsRule)
	res, err := LoadBytes("never-empty.yml", []byte(src), Options{Source: SourceBuiltin})
	if err != nil || len(res.Errors) > 0 {
		t.Fatalf("load: %v %v", err, res.Errors)
	}
	eng := NewEngine(res.Rules)
	for image, want := range map[string][]string{
		`C:\Windows\System32\wscript.exe`: {"T1059.001", "T1059.003"},
		`C:\Windows\System32\cmd.exe`:     {"T1059.003"},
	} {
		ev := sysmon1(map[string]string{"Image": image, "CommandLine": image, "ParentImage": `C:\Office\WINWORD.EXE`})
		var got []string
		eng.Match(ev, func(h Hit) { got, _ = hitIDs(h) })
		if !slices.Equal(got, want) {
			t.Errorf("%s: hit techniques %v, want %v", image, got, want)
		}
	}
}
