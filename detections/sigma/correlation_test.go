package sigma

import (
	"strings"
	"testing"
	"time"
)

func TestParseCorrelation(t *testing.T) {
	src := `title: Many failed logons
id: 0e95725d-7320-415d-80f7-004da920fc11
name: many_failed_logons
status: test
level: high
tags:
    - attack.t1110
correlation:
    type: value_count
    rules:
        - failed_logon
        - 5638f7c0-ac70-491d-8465-2a65075e0d86
    group-by:
        - ComputerName
    timespan: 15m
    condition:
        gte: 10
        field: user
    aliases:
        user:
            failed_logon: TargetUserName
            5638f7c0-ac70-491d-8465-2a65075e0d86: SubjectUserName
    generate: true
`
	r, err := ParseRule("c.yml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	c := r.Correlation
	if c == nil || r.Name != "many_failed_logons" || r.Level != "high" || len(r.Tags) != 1 {
		t.Fatalf("rule: %+v", r)
	}
	if c.Type != CorrelationValueCount || len(c.Rules) != 2 || c.GroupBy[0] != "ComputerName" || c.Timespan != 15*time.Minute ||
		len(c.Condition) != 1 || c.Condition[0] != (Comparison{"gte", 10}) || c.Field != "user" || !c.Generate ||
		c.Aliases["user"]["failed_logon"] != "TargetUserName" {
		t.Fatalf("correlation: %+v", c)
	}
	for _, bad := range []struct{ src, want string }{
		{"title: x\ncorrelation:\n    type: sum\n", "c.yml:3: correlation.type: unknown type"},
		{"title: x\ncorrelation:\n    type: event_count\n    rules: [a]\n    timespan: 5x\n    condition: {gte: 2}\n", "c.yml:5: correlation.timespan: timespan \"5x\": unknown unit"},
		{"title: x\ncorrelation:\n    type: event_count\n    rules: [a]\n    timespan: 5m\n", "c.yml:3: correlation.condition: missing"},
		{"title: x\ncorrelation:\n    type: event_count\n    rules: [a]\n    timespan: 5m\n    condition: {gte: many}\n", "c.yml:6: correlation.condition.gte: \"many\" is not a number"},
		{"title: x\ncorrelation:\n    type: temporal\n    rules: [a]\n    timespan: 5m\n", "correlation.rules: temporal needs at least two rules"},
		{"title: x\ncorrelation:\n    type: value_count\n    rules: [a]\n    timespan: 5m\n    condition: {gte: 2}\n", "correlation.condition.field: missing"},
	} {
		_, err := ParseRule("c.yml", []byte(bad.src))
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: got %v, want %q", bad.src, err, bad.want)
		}
	}
}
