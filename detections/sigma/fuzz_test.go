package sigma

import "testing"

const seedRule = `title: t
id: 1
status: test
logsource: {category: process_creation, product: windows}
detection:
    sel:
        - Image|endswith: ['\a.exe', '\b.exe']
        - CommandLine|contains|all: [x, y]
    filter:
        User: null
    keywords: [evil]
    condition: (sel or keywords) and not 1 of filter*
tags: [attack.t1059.001, attack.execution]
level: high
`

// FuzzParseRule checks the rule parser never panics, and that what it
// accepts has a condition.
func FuzzParseRule(f *testing.F) {
	f.Add(seedRule)
	f.Add("action: global\ntitle: a\n---\nlogsource: {product: x}\ndetection: {s: {a: 1}, condition: s}\n")
	f.Add("title: c\ncorrelation: {type: event_count}\n")
	f.Add("a: &x [1]\nb: *x\n")
	f.Add(seedRule + "search_tags:\n    sel: [attack.t1059.001]\n    keywords: attack.t1059.001\n")
	f.Fuzz(func(t *testing.T, s string) {
		res := Parse("fuzz.yml", []byte(s))
		for _, r := range res.Rules {
			if r.Detection.Condition == nil {
				t.Fatalf("rule without condition accepted")
			}
		}
	})
}

// FuzzParseCondition checks the condition parser never panics.
func FuzzParseCondition(f *testing.F) {
	names := []string{"sel", "selection_a", "selection_b", "filter_x", "_hidden"}
	for _, s := range []string{"sel", "sel and not filter_x", "1 of selection_* or (sel and not (filter_x))",
		"all of them", "2 of selection*", "not not sel", "((sel)", "sel |count() > 5", "all of"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseCondition(s, names)
		if err == nil && e == nil {
			t.Fatalf("nil expression without error")
		}
		if err == nil {
			_ = String(e)
		}
	})
}

func TestConditionErrors(t *testing.T) {
	names := []string{"sel", "filter"}
	for _, s := range []string{"", "sel and", "(sel", "unknown", "1 of nothing*", "sel | count() > 2", "0 of sel", "and sel"} {
		if _, err := ParseCondition(s, names); err == nil {
			t.Errorf("%q: want an error", s)
		}
	}
	for s, want := range map[string]string{
		"sel and not filter or sel": "((sel and not filter) or sel)",
		"1 of them":                 "1 of them",
		"not (sel or filter)":       "not (sel or filter)",
	} {
		e, err := ParseCondition(s, names)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if got := String(e); got != want {
			t.Errorf("%q: got %q, want %q", s, got, want)
		}
	}
}

func TestParseErrorsNameLineAndField(t *testing.T) {
	src := "title: t\nlogsource: {product: windows}\ndetection:\n    sel:\n        Image|bogus: x\n    condition: sel\n"
	res := Parse("r.yml", []byte(src))
	if len(res.Errors) != 1 {
		t.Fatalf("want one error, got %v", res.Errors)
	}
	if got := res.Errors[0].Error(); got != `r.yml:5: detection.sel.Image|bogus: unknown modifier "bogus"` {
		t.Errorf("got %q", got)
	}
	// A correlation without rules or timespan is an error naming the
	// field; the broken detection rule after it is one more.
	res = Parse("c.yml", []byte("title: c\ncorrelation:\n    type: event_count\n---\n"+src))
	if len(res.Errors) != 2 || res.Errors[0].Field != "correlation.rules" || res.Errors[0].Line != 3 {
		t.Errorf("want the correlation's missing rules at line 3 and one more error, got %v", res.Errors)
	}
}
