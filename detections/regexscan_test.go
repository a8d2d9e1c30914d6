package detections

import (
	"testing"

	"github.com/quarry-sec/quarry/telemetry"
)

// TestRegexSetsFromScan checks regular expressions whose literal sets the
// engine answers from its scan: on values that hold all, some or none of
// the strings every match must contain (in any case, split or whole), the
// engine agrees with the reference evaluator, which always runs the
// expression.
func TestRegexSetsFromScan(t *testing.T) {
	rule := []byte(`title: Network discovery
id: 0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f
logsource:
    category: process_creation
    product: windows
detection:
    selection:
        CommandLine|re:
            - 'ipconfig\s+/all'
            - 'route\s+print'
            - '(?i)netsh\s+interface show interface'
    condition: selection
level: medium
`)
	res, err := LoadBytes("re.yml", rule, Options{})
	if err != nil || len(res.Rules) != 1 {
		t.Fatalf("load: %v %v", err, res.Errors)
	}
	e, ref := NewEngine(res.Rules), NewReference()
	for _, cmd := range []string{
		`ipconfig /all`, `cmd /c ipconfig   /all > x`, `ipconfig/all`, `IPCONFIG /ALL`, `ipconfig /renew && echo /all`,
		`route print`, `route	print`, `route  PRINT`, `print route`, `ROUTE print`,
		`netsh interface show interface`, `NETSH  Interface Show Interface`, `netsh interface show`, `x`, ``,
	} {
		ev := telemetry.NewEvent(telemetry.KindExec, telemetry.SourceSysmon)
		ev.Channel, ev.EventID, ev.Category = "Microsoft-Windows-Sysmon/Operational", 1, "process_creation"
		ev.Fields = telemetry.FieldsFromMap(map[string]string{"CommandLine": cmd, "Image": `C:\Windows\System32\cmd.exe`})
		want, err := ref.Match(res.Rules[0], &ev)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.Match(&ev, nil) == 1; got != want {
			t.Errorf("%q: engine %v, reference %v", cmd, got, want)
		}
	}
}
