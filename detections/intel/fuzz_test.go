package intel

import (
	"errors"
	"strings"
	"testing"
)

func FuzzParsePattern(f *testing.F) {
	for _, s := range []string{
		"[file:hashes.'SHA-256' = 'aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f' OR file:hashes.MD5 = 'aa']",
		"[domain-name:value = 'evil.example'] OR [ipv4-addr:value = '198.51.100.0/24']",
		"([url:value = 'http://x.example/it\\'s'])",
		"[ipv4-addr:value ISSUBSET '10.0.0.0/8']",
		"[file:name = 'a' AND file:size > 3] WITHIN 5 SECONDS",
		"[", "'", "((((", "[a:b = 'c'] OR",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cs, err := ParsePattern(s)
		if err != nil {
			if cs != nil {
				t.Fatalf("error %v with comparisons %v", err, cs)
			}
			return
		}
		if len(cs) == 0 {
			t.Fatalf("%q parsed to no comparison", s)
		}
		for _, c := range cs {
			if c.Object == "" || c.Property == "" {
				t.Fatalf("%q: empty path in %+v", s, c)
			}
			typ, v, err := c.Indicator()
			if err != nil {
				continue
			}
			// A comparison's indicator is in normal form.
			if typ == CIDR {
				if n, err := Normalize(CIDR, v); err != nil || n != v {
					t.Fatalf("%q: cidr %q renormalized to %q, %v", s, v, n, err)
				}
				continue
			}
			if n, err := Normalize(typ, v); err != nil || n != v {
				t.Fatalf("%q: %s %q renormalized to %q, %v", s, typ, v, n, err)
			}
		}
	})
}

func FuzzDetect(f *testing.F) {
	for _, s := range []string{
		"44d88612fea8a8f36de82e1f333f6d3f", "10.0.0.1", "2001:db8::1", "10.0.0.0/8", "evil.example",
		"hxxp://evil[.]example/x", "evil.example/path", "1.2.3", "http://[::1]:80/", "a.b.c.d.e.f",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		typ, v, err := Detect(s)
		if err != nil {
			if errors.Is(err, ErrUnsupportedPattern) {
				t.Fatalf("Detect(%q): pattern error %v", s, err)
			}
			return
		}
		// Detection is stable: the value detects as itself.
		typ2, v2, err := Detect(v)
		if err != nil || typ2 != typ || v2 != v {
			t.Fatalf("Detect(%q) = %s %q, but Detect(%q) = %s %q, %v", s, typ, v, v, typ2, v2, err)
		}
		if n, err := Normalize(typ, v); err != nil || n != v {
			t.Fatalf("Detect(%q) = %s %q not normal: %q, %v", s, typ, v, n, err)
		}
		if strings.ContainsAny(v, " \t\n") && typ != URL {
			t.Fatalf("Detect(%q) = %s %q holds space", s, typ, v)
		}
	})
}
