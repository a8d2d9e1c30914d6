package detections

import (
	"testing"

	"github.com/quarry-sec/quarry/attack"
)

// An ATT&CK data source or data component tag (attack.ds0005, SigmaHQ
// writes a few) is kept in the tags like a group or software tag, not
// taken for a tactic: ioa_rules.tactics said "credential-access,ds0005" and
// lint warned of an unknown tactic.
func TestDataSourceTagIsNotATactic(t *testing.T) {
	kb, err := attack.Load("")
	if err != nil {
		t.Fatal(err)
	}
	const rule = `title: Volume Shadow Copy Created with PowerShell
id: 0f4e5b1c-3a2d-4c8e-9b7a-6d5e4f3c2b1a
logsource: {product: windows, category: ps_script}
tags:
  - attack.credential-access
  - attack.t1003.003
  - attack.ds0005
  - attack.dc0001
detection:
  sel:
    ScriptBlockText|contains: 'win32_shadowcopy'
  condition: sel
`
	res, err := LoadBytes("ds.yml", []byte(rule), Options{Source: SourceSigma, KB: kb})
	if err != nil || len(res.Errors) > 0 || len(res.Rules) != 1 {
		t.Fatalf("load: %v %v", err, res.Errors)
	}
	if len(res.Warnings) > 0 {
		t.Errorf("warnings %v", res.Warnings)
	}
	r := res.Rules[0]
	if len(r.Tactics) != 1 || r.Tactics[0].ShortName != "credential-access" {
		t.Errorf("tactics %+v, want credential-access alone", r.Tactics)
	}
}
