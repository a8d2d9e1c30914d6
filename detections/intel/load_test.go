package intel

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var loadTime = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

func readFile(t *testing.T, name string, format Format, o Options) *Feed {
	t.Helper()
	fh, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if o.Source == "" {
		o.Source = "test"
	}
	if o.Now.IsZero() {
		o.Now = loadTime
	}
	f, err := Read(fh, name, format, o)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func find(f *Feed, typ Type, value string) *Indicator {
	for i := range f.Indicators {
		if f.Indicators[i].Type == typ && f.Indicators[i].Value == value {
			return &f.Indicators[i]
		}
	}
	return nil
}

func values(f *Feed) []string {
	var out []string
	for _, in := range f.Indicators {
		out = append(out, string(in.Type)+" "+in.Value)
	}
	slices.Sort(out)
	return out
}

func TestReadSTIXBundle(t *testing.T) {
	f := readFile(t, "bundle.json", "", Options{})
	if f.Format != FormatSTIX {
		t.Fatalf("format %s, want stix", f.Format)
	}
	want := []string{
		"cidr 198.51.100.0/24",
		"domain evil-c2.example",
		"domain old-c2.example",
		"ipv4 203.0.113.7",
		"ipv6 2001:db8::dead:beef",
		"md5 79054025255fb1a26e4bc422aef54eb4",
		"sha256 aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f",
		"url http://payloads.example/stage2.ps1",
	}
	if got := values(f); !slices.Equal(got, want) {
		t.Fatalf("indicators\n got %q\nwant %q", got, want)
	}
	if f.Unsupported() != 3 || len(f.Skipped) != 3 {
		t.Fatalf("skipped %+v, want 3 unsupported (AND, sigma, email-addr)", f.Skipped)
	}
	for _, s := range f.Skipped {
		if !strings.HasPrefix(s.Ref, "indicator--") {
			t.Errorf("skip %+v does not name its object", s)
		}
	}
	h := find(f, SHA256, "aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f")
	if h.Confidence != 85 || !slices.Equal(h.Malware, []string{"S0154"}) || h.Ref != "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f" {
		t.Errorf("hash indicator %+v", h)
	}
	u := find(f, URL, "http://payloads.example/stage2.ps1")
	if !slices.Equal(u.Groups, []string{"G0016"}) || !slices.Equal(u.Techniques, []string{"T1059.001"}) || u.Confidence != DefaultConfidence {
		t.Errorf("url indicator %+v", u)
	}
	if ip := find(f, IPv4, "203.0.113.7"); !slices.Equal(ip.Groups, []string{"Wizard Spider"}) {
		t.Errorf("ip indicator %+v", ip)
	}
	old := find(f, Domain, "old-c2.example")
	if !old.Expired(loadTime) || old.ValidUntil != time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC) {
		t.Errorf("old indicator %+v should have expired", old)
	}
}

func TestReadMISPEvent(t *testing.T) {
	f := readFile(t, "misp_event.json", "", Options{Confidence: 70})
	if f.Format != FormatMISP {
		t.Fatalf("format %s, want misp", f.Format)
	}
	want := []string{
		"domain update-check.example.net",
		"ipv4 192.0.2.44",
		"sha1 da39a3ee5e6b4b0d3255bfef95601890afd80709",
		"sha256 5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef",
		"sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"url https://cdn.example.net/a/b.hta",
	}
	if got := values(f); !slices.Equal(got, want) {
		t.Fatalf("indicators\n got %q\nwant %q", got, want)
	}
	if f.Duplicates != 1 {
		t.Errorf("duplicates %d, want 1 (the domain listed twice)", f.Duplicates)
	}
	if len(f.Skipped) != 3 || f.Unsupported() != 2 {
		t.Errorf("skipped %+v, want email-src and to_ids false unsupported, a bad md5 invalid", f.Skipped)
	}
	d := find(f, Domain, "update-check.example.net")
	if !slices.Equal(d.Techniques, []string{"T1059.001", "T1071.001"}) || !slices.Equal(d.Groups, []string{"APT29"}) ||
		!slices.Equal(d.Malware, []string{"S0002"}) || d.Confidence != 70 {
		t.Errorf("domain indicator %+v", d)
	}
	if s := find(f, SHA256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"); !slices.Equal(s.Techniques, []string{"T1059.001"}) {
		t.Errorf("event tags not applied: %+v", s)
	}
}

func TestReadPlainList(t *testing.T) {
	f := readFile(t, "list.txt", "", Options{Source: "blocklist", Confidence: 40, TTL: 48 * time.Hour})
	want := []string{
		"cidr 100.64.0.0/10",
		"domain evil-domain.example",
		"ipv4 198.18.0.12",
		"ipv6 2001:db8::42",
		"md5 44d88612fea8a8f36de82e1f333f6d3f",
		"sha1 3395856ce81f2b7382dee72602f798b642f14140",
		"sha256 275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f",
		"url http://bad.example.com/dl/payload.exe",
	}
	if got := values(f); !slices.Equal(got, want) {
		t.Fatalf("indicators\n got %q\nwant %q", got, want)
	}
	if f.Duplicates != 1 {
		t.Errorf("duplicates %d, want 1", f.Duplicates)
	}
	var refs []string
	for _, s := range f.Skipped {
		refs = append(refs, s.Ref)
	}
	if !slices.Equal(refs, []string{"list.txt:10", "list.txt:11"}) {
		t.Errorf("skipped %+v, want lines 10 and 11", f.Skipped)
	}
	for _, in := range f.Indicators {
		if in.Source != "blocklist" || in.Confidence != 40 || !in.ValidUntil.Equal(loadTime.Add(48*time.Hour)) {
			t.Fatalf("%+v: options not applied", in)
		}
	}
}

func TestMalformedFeeds(t *testing.T) {
	cases := []struct {
		name, text string
		format     Format
		want       string
	}{
		{"cut.json", "{\"type\": \"bundle\",\n \"objects\": [\n {\"type\": \"indicator\", ", FormatSTIX, "cut.json"},
		{"syntax.json", "{\"type\": \"bundle\",\n \"objects\": [\n {\"type\" \"indicator\"}]}", FormatSTIX, "syntax.json: line 3"},
		{"noid.json", `{"type": "bundle", "objects": [{"type": "indicator", "pattern": "[url:value = 'http://a.b/']"}]}`, FormatSTIX, "object 0"},
		{"notbundle.json", `{"type": "indicator"}`, FormatSTIX, "not a STIX bundle"},
		{"rel.json", `{"type": "bundle", "objects": [{"type": "relationship", "id": "relationship--1", "relationship_type": "indicates"}]}`, FormatSTIX, "relationship--1"},
		{"misp.json", `{"Event": {"Attribute": [{"type": "md5", "value": 5}]}}`, FormatMISP, "misp.json"},
		{"empty.json", `{"Other": 1}`, FormatMISP, "no Event"},
	}
	for _, c := range cases {
		_, err := Read(strings.NewReader(c.text), c.name, c.format, Options{Source: "x"})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one naming %q", c.name, err, c.want)
		}
	}
	if _, err := Read(strings.NewReader("a.example\n"), "l.txt", "", Options{}); err == nil {
		t.Error("a load without a source name succeeded")
	}
	long := strings.Repeat("a", maxLine+10)
	if _, err := Read(strings.NewReader("ok.example\n"+long+"\n"), "long.txt", FormatPlain, Options{Source: "x"}); err == nil || !strings.Contains(err.Error(), "long.txt:2") {
		t.Errorf("an over-long line: error %v, want long.txt:2", err)
	}
}
