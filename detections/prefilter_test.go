package detections

import (
	"testing"

	"github.com/quarry-sec/quarry/telemetry"
)

// TestSecondRequirementGroup checks that a rule needing a program and an
// argument is evaluated only when literals of both occur, and still
// matches when they do.
func TestSecondRequirementGroup(t *testing.T) {
	rule := []byte(`title: Tool with a flag
id: 3a4b5c6d-7e8f-4a0b-9c1d-2e3f4a5b6c7d
logsource: {category: process_creation, product: windows}
detection:
    sel_img:
        Image|endswith: '\tool.exe'
    sel_cli:
        CommandLine|contains: '--exfiltrate'
    condition: all of sel_*
level: high
`)
	res, err := LoadBytes("r.yml", rule, Options{})
	if err != nil || len(res.Rules) != 1 {
		t.Fatal(err, res.Errors)
	}
	if g := requiredGroups(res.Rules[0].prog.root); len(g) != 2 {
		t.Fatalf("%d requirement groups, want 2", len(g))
	}
	e := NewEngine(res.Rules)
	ev := func(image, cmd string) *telemetry.Event {
		x := telemetry.NewEvent(telemetry.KindExec, telemetry.SourceSysmon)
		x.Channel, x.EventID, x.Category = "Microsoft-Windows-Sysmon/Operational", 1, "process_creation"
		x.Fields = telemetry.FieldsFromMap(map[string]string{"Image": image, "CommandLine": cmd})
		return &x
	}
	for _, c := range []struct {
		image, cmd string
		cand, hit  bool
	}{
		{`C:\t\tool.exe`, `tool.exe --exfiltrate x`, true, true},
		{`C:\t\other.exe`, `other.exe --exfiltrate x`, false, false},
		{`C:\t\tool.exe`, `tool.exe --help`, false, false},
		{`C:\t\tool.exe.bak`, `tool.exe --exfiltrate`, true, false}, // both literals occur; the suffix does not match
	} {
		n := e.Match(ev(c.image, c.cmd), nil)
		if (n == 1) != c.hit || (e.evaluated == 1) != c.cand {
			t.Errorf("%s %q: hit %v candidate %v, want %v %v", c.image, c.cmd, n == 1, e.evaluated == 1, c.hit, c.cand)
		}
	}
}

// TestLiteralsAreFolded checks, on every SigmaHQ rule, that the prefilter's
// literals are case-folded: appendLiterals folds only a cased matcher's,
// relying on compilation having folded the others.
func TestLiteralsAreFolded(t *testing.T) {
	checked := 0
	for _, r := range loadAll(t).Rules {
		prog := r.program()
		if prog == nil {
			continue
		}
		eachLeaf(prog.root, func(l *leaf) {
			for _, g := range l.groups {
				for i := range g {
					lits, _ := g[i].appendLiterals(nil)
					for _, lit := range lits {
						if f := fold(lit); f != lit {
							t.Errorf("%s: literal %q of %+v is not folded (%q)", r.ID, lit, g[i], f)
						}
						checked++
					}
				}
			}
		})
	}
	if checked < 10000 {
		t.Fatalf("only %d literals checked", checked)
	}
	t.Logf("%d literals checked", checked)
}
