package agent

import "testing"

func TestDiffRowsMultiset(t *testing.T) {
	r := func(v string) Row { return Row{"a": v} }
	added, removed := diffRows([]Row{r("1"), r("2"), r("2")}, []Row{r("2"), r("3"), r("3")})
	if len(added) != 2 || added[0]["a"] != "3" || added[1]["a"] != "3" {
		t.Errorf("added = %v", added)
	}
	if len(removed) != 2 || removed[0]["a"] != "1" || removed[1]["a"] != "2" {
		t.Errorf("removed = %v", removed)
	}
}

func TestPlatformMatches(t *testing.T) {
	for _, c := range []struct {
		filter, platform string
		want             bool
	}{
		{"", "linux", true}, {"linux", "linux", true}, {"posix", "linux", true}, {"windows", "linux", false},
		{"darwin,linux", "linux", true}, {"all", "windows", true}, {"posix", "windows", false},
	} {
		if got := platformMatches(c.filter, c.platform); got != c.want {
			t.Errorf("platformMatches(%q, %q) = %v", c.filter, c.platform, got)
		}
	}
}

func TestInsecureOnlyOnLoopback(t *testing.T) {
	if _, err := NewHTTPClient("https://fleet.example.com", TLSOptions{Insecure: true}); err == nil {
		t.Error("--insecure to a remote host accepted")
	}
	if _, err := NewHTTPClient("http://10.0.0.1:8080", TLSOptions{}); err == nil {
		t.Error("plain http to a remote host accepted")
	}
	for _, u := range []string{"https://127.0.0.1:8443", "http://localhost:8080", "https://[::1]:1"} {
		if _, err := NewHTTPClient(u, TLSOptions{Insecure: true}); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
}
