package detections

import (
	"fmt"
	"slices"
	"testing"

	"github.com/quarry-sec/quarry/telemetry"
)

// TestFieldMemoLast checks the memo's answer for a value looked up again
// right away (from its last entry) and for values in turn (from its map).
func TestFieldMemoLast(t *testing.T) {
	m := &fieldMemo{lits: map[string]memoEntry{}}
	buf := []byte("a value")
	m.store(string(buf), []int32{1})
	buf[0] = 'A' // the stored value is a copy
	m.store("b value", []int32{2, 3})
	for _, c := range []struct {
		v    string
		want []int32
		ok   bool
	}{
		{"b value", []int32{2, 3}, true}, {"b value", []int32{2, 3}, true}, {"a value", []int32{1}, true},
		{"a value", []int32{1}, true}, {"A value", nil, false}, {"b value", []int32{2, 3}, true}, {"c value", nil, false},
	} {
		got, ok := m.lookup(c.v)
		if ok != c.ok || !slices.Equal(got, c.want) {
			t.Fatalf("lookup(%q) = %v %v, want %v %v", c.v, got, ok, c.want, c.ok)
		}
	}
	if m.hits != 5 || m.misses != 2 {
		t.Errorf("hits %d misses %d, want 5 and 2", m.hits, m.misses)
	}
}

// TestMemosSurviveRuleSetSwitch: in mixed telemetry every other event belongs
// to another rule set; each set's field memos and gram samples must carry
// over the switches, or no value is ever remembered, the literals are never
// anchored anew, and each event allocates a fresh gram table.
func TestMemosSurviveRuleSetSwitch(t *testing.T) {
	res, err := LoadBytes("mixed.yml", []byte(`title: Process
id: 6f1b9a53-3a57-4c1f-8d1e-0a4d2b7c9e11
logsource: {product: windows, category: process_creation}
detection:
  sel:
    CommandLine|contains: 'mimikatz'
    ParentImage|endswith: '\cmd.exe'
  condition: sel
---
title: Network
id: 0c3e2a41-7b6d-4e8a-9f21-5d7c8b9a0e22
logsource: {product: windows, category: network_connection}
detection:
  sel:
    DestinationHostname|contains: 'evil-c2'
  condition: sel
`), Options{})
	if err != nil || len(res.Errors) > 0 {
		t.Fatalf("load: %v %v", err, res.Errors)
	}
	eng := NewEngine(res.Rules)
	var proc *telemetry.Event
	hits := 0
	for i := range 2 * anchorSamples {
		proc = sysmon1(map[string]string{"Image": `C:\Windows\System32\whoami.exe`,
			"CommandLine": fmt.Sprintf(`whoami.exe /all /fo list %d`, i), "ParentImage": `C:\Windows\System32\cmd.exe`})
		net := sysmon3(map[string]string{"Image": `C:\Windows\System32\svchost.exe`,
			"DestinationHostname": fmt.Sprintf("host%d.example.org", i)})
		hits += eng.Match(proc, func(Hit) {})
		hits += eng.Match(net, func(Hit) {})
	}
	if hits != 0 {
		t.Fatalf("%d hits on benign events", hits)
	}
	s := eng.c.set(keyOf(proc))
	if s.anchored[fieldID("CommandLine")].Load() == nil {
		t.Error("CommandLine literals never anchored anew: the process set's gram samples were dropped at each switch")
	}
	if m := eng.memoFor(s, fieldID("ParentImage")); m.hits == 0 {
		t.Error("ParentImage, the same in every process event, never answered from its memo")
	}
	// and the rules still match after all that
	evil := sysmon1(map[string]string{"Image": `C:\Users\Public\m.exe`, "CommandLine": `m.exe "privilege::debug" mimikatz`,
		"ParentImage": `C:\Windows\System32\cmd.exe`})
	if eng.Match(evil, func(Hit) {}) != 1 {
		t.Error("the process rule no longer matches")
	}
}
