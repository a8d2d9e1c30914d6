package intel

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Type is the kind of an indicator's value.
type Type string

// The indicator types Quarry matches.
const (
	SHA256 Type = "sha256"
	SHA1   Type = "sha1"
	MD5    Type = "md5"
	IPv4   Type = "ipv4"
	IPv6   Type = "ipv6"
	CIDR   Type = "cidr" // an IPv4 or IPv6 network
	Domain Type = "domain"
	URL    Type = "url"
)

// Types lists every indicator type.
var Types = []Type{SHA256, SHA1, MD5, IPv4, IPv6, CIDR, Domain, URL}

// Indicator is one indicator of compromise from one feed (source).
type Indicator struct {
	Type  Type
	Value string // normalized (see Normalize)
	// Source names the feed the indicator came from.
	Source string
	// Confidence is 0–100.
	Confidence int
	// Ref is the indicator's id in its feed (STIX id, MISP attribute uuid,
	// file:line of a plain list), for reporting.
	Ref string
	// FirstSeen is when Quarry first loaded the indicator; Updated when a
	// load last carried it; ValidUntil, when not zero, is when it stops
	// matching.
	FirstSeen, Updated, ValidUntil time.Time
	// Techniques are ATT&CK technique IDs (T1059.001); Groups ATT&CK group
	// IDs (G0016) or, when the knowledge base does not know them, the
	// intel's names; Malware ATT&CK software IDs (S0154) or names.
	Techniques, Groups, Malware []string
}

// Expired reports whether the indicator has stopped matching at now.
func (in *Indicator) Expired(now time.Time) bool {
	return !in.ValidUntil.IsZero() && !now.Before(in.ValidUntil)
}

// Normalize returns the canonical form of a value of type t, under which
// indicators are stored and matched: hex hashes in lower case, IP addresses
// and networks in netip's form (networks masked), domains in lower case
// without a trailing dot, URLs as NormalizeURL gives them.
func Normalize(t Type, v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", fmt.Errorf("empty %s", t)
	}
	switch t {
	case SHA256, SHA1, MD5:
		want := map[Type]int{SHA256: 64, SHA1: 40, MD5: 32}[t]
		if len(v) != want || !isHex(v) {
			return "", fmt.Errorf("%s %q: want %d hex digits", t, v, want)
		}
		return strings.ToLower(v), nil
	case IPv4, IPv6:
		a, err := netip.ParseAddr(v)
		if err != nil {
			return "", fmt.Errorf("%s %q: %w", t, v, err)
		}
		a = a.Unmap()
		if (t == IPv4) != a.Is4() {
			return "", fmt.Errorf("%s %q: wrong address family", t, v)
		}
		return a.WithZone("").String(), nil
	case CIDR:
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return "", fmt.Errorf("cidr %q: %w", v, err)
		}
		return p.Masked().String(), nil
	case Domain:
		d := strings.TrimSuffix(strings.ToLower(v), ".")
		d = strings.TrimPrefix(d, "*.")
		if !isDomain(d) {
			return "", fmt.Errorf("domain %q: not a host name", v)
		}
		return d, nil
	case URL:
		return NormalizeURL(v)
	}
	return "", fmt.Errorf("unknown indicator type %q", t)
}

// NormalizeURL returns a URL's canonical form: scheme and host in lower
// case, the scheme's default port and the fragment dropped, an empty path
// written "/". A URL without a scheme is read as http.
func NormalizeURL(v string) (string, error) {
	v = strings.TrimSpace(v)
	if !strings.Contains(v, "://") {
		v = "http://" + v
	}
	u, err := url.Parse(v)
	if err != nil {
		return "", fmt.Errorf("url %q: %w", v, err)
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return "", fmt.Errorf("url %q: no host", v)
	}
	port := u.Port()
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") || (scheme == "ftp" && port == "21") {
		port = ""
	}
	if strings.Contains(host, ":") {
		a, err := netip.ParseAddr(host)
		if err != nil {
			return "", fmt.Errorf("url %q: host: %w", v, err)
		}
		host = "[" + a.String() + "]"
	}
	if port != "" {
		host += ":" + port
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	s := scheme + "://" + host + path
	if u.RawQuery != "" || u.ForceQuery {
		s += "?" + u.RawQuery
	}
	return s, nil
}

// Detect returns the type of a plain indicator (a hash, an address, a
// network, a domain or a URL) and its normalized value. Defanged forms
// (hxxp://, evil[.]com, 1.2.3[.]4) are read as their plain forms.
func Detect(s string) (Type, string, error) {
	s = refang(strings.TrimSpace(s))
	if s == "" {
		return "", "", fmt.Errorf("empty indicator")
	}
	if isHex(s) {
		switch len(s) {
		case 32:
			return MD5, strings.ToLower(s), nil
		case 40:
			return SHA1, strings.ToLower(s), nil
		case 64:
			return SHA256, strings.ToLower(s), nil
		}
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Unmap().Is4() {
			v, err := Normalize(IPv4, s)
			return IPv4, v, err
		}
		v, err := Normalize(IPv6, s)
		return IPv6, v, err
	}
	if strings.Contains(s, "/") && !strings.Contains(s, "://") {
		if _, err := netip.ParsePrefix(s); err == nil {
			v, err := Normalize(CIDR, s)
			return CIDR, v, err
		}
	}
	if strings.Contains(s, "://") {
		v, err := NormalizeURL(s)
		return URL, v, err
	}
	d := strings.TrimSuffix(strings.ToLower(s), ".")
	if isDomain(d) {
		return Domain, d, nil
	}
	if i := strings.IndexByte(s, '/'); i > 0 && isDomain(strings.ToLower(s[:i])) {
		v, err := NormalizeURL(s)
		return URL, v, err
	}
	return "", "", fmt.Errorf("%q is not a hash, address, network, domain or URL", s)
}

// refang undoes the usual defanging of shared indicators.
func refang(s string) string {
	if !strings.ContainsAny(s, "[(x") {
		return s
	}
	r := strings.NewReplacer("[.]", ".", "(.)", ".", "[dot]", ".", "[:]", ":", "[://]", "://")
	s = r.Replace(s)
	low := strings.ToLower(s)
	for _, p := range []struct{ from, to string }{{"hxxps://", "https://"}, {"hxxp://", "http://"}, {"fxp://", "ftp://"}} {
		if strings.HasPrefix(low, p.from) {
			return p.to + s[len(p.from):]
		}
	}
	return s
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// isDomain reports whether d (lower case) is a host name of at least two
// labels whose last label is not numeric.
func isDomain(d string) bool {
	if len(d) < 3 || len(d) > 253 {
		return false
	}
	labels := 0
	start := 0
	for i := 0; i <= len(d); i++ {
		if i < len(d) && d[i] != '.' {
			c := d[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
			continue
		}
		n := i - start
		if n == 0 || n > 63 || d[start] == '-' || d[i-1] == '-' {
			return false
		}
		labels++
		start = i + 1
	}
	if labels < 2 {
		return false
	}
	last := d[strings.LastIndexByte(d, '.')+1:]
	for i := 0; i < len(last); i++ {
		if last[i] < '0' || last[i] > '9' {
			return true
		}
	}
	return false
}
