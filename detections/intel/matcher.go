package intel

import (
	"net/netip"
	"strings"
	"time"

	"github.com/quarry-sec/quarry/telemetry"
)

// Matcher finds indicators in events. It is built once from a set of
// indicators (Builder) and is read-only after: one Matcher serves any
// number of goroutines.
type Matcher struct {
	sha256  map[[32]byte]int32
	sha1    map[[20]byte]int32
	md5     map[[16]byte]int32
	ips     map[[16]byte]int32
	nets    []netTable // by prefix length, longest first
	domains map[string]int32
	urls    map[string]int32
	// urlHosts holds the hosts of the URL indicators: a URL in a command
	// line is normalized (which allocates) only when its host is one.
	urlHosts map[string]struct{}

	entries []entry
	sources []string
	links   []links

	// Now is the clock deciding expiry at match time (time.Now by default).
	Now func() time.Time
}

type netTable struct {
	v4   bool
	bits int // prefix length in the 16-byte form (IPv4 lengths + 96)
	m    map[[16]byte]int32
}

// entry is one indicator in the matcher, compact: its value (kept for the
// types whose key is not the value), feed, confidence, validity, ATT&CK
// links, and the next entry of the same value from another feed.
type entry struct {
	value      string
	validUntil int64
	source     uint32
	links      uint32
	next       int32
	confidence uint8
	typ        Type
}

type links struct {
	techniques, groups, malware []string
}

// Builder collects indicators for a Matcher.
type Builder struct {
	m        *Matcher
	netsBy   map[int]map[[16]byte]int32
	sourceIx map[string]uint32
	linkIx   map[string]uint32
}

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder { return NewBuilderSized(nil) }

// NewBuilderSized returns an empty Builder whose sets are sized for the
// given number of indicators of each type (building a large set is then
// faster: its maps do not grow).
func NewBuilderSized(n map[Type]int) *Builder {
	return &Builder{
		m: &Matcher{
			sha256: make(map[[32]byte]int32, n[SHA256]), sha1: make(map[[20]byte]int32, n[SHA1]),
			md5: make(map[[16]byte]int32, n[MD5]), ips: make(map[[16]byte]int32, n[IPv4]+n[IPv6]),
			domains: make(map[string]int32, n[Domain]), urls: make(map[string]int32, n[URL]),
			urlHosts: map[string]struct{}{}, links: []links{{}}, Now: time.Now,
			entries: make([]entry, 0, n[SHA256]+n[SHA1]+n[MD5]+n[IPv4]+n[IPv6]+n[CIDR]+n[Domain]+n[URL]),
		},
		netsBy:   map[int]map[[16]byte]int32{},
		sourceIx: map[string]uint32{},
		linkIx:   map[string]uint32{"": 0},
	}
}

// Add adds an indicator whose value is normalized (Normalize); one that is
// not is ignored.
func (b *Builder) Add(in Indicator) {
	m := b.m
	e := entry{typ: in.Type, confidence: uint8(min(max(in.Confidence, 0), 100)), next: -1}
	if !in.ValidUntil.IsZero() {
		e.validUntil = in.ValidUntil.UnixNano()
	}
	si, ok := b.sourceIx[in.Source]
	if !ok {
		si = uint32(len(m.sources))
		m.sources = append(m.sources, in.Source)
		b.sourceIx[in.Source] = si
	}
	e.source = si
	lk := join(in.Techniques) + "|" + join(in.Groups) + "|" + join(in.Malware)
	if lk != "||" {
		li, ok := b.linkIx[lk]
		if !ok {
			li = uint32(len(m.links))
			m.links = append(m.links, links{in.Techniques, in.Groups, in.Malware})
			b.linkIx[lk] = li
		}
		e.links = li
	}
	idx := int32(len(m.entries))
	switch in.Type {
	case SHA256:
		var k [32]byte
		if decodeHex(k[:], in.Value) {
			e.next = chain(m.sha256, k, idx)
			m.entries = append(m.entries, e)
		}
	case SHA1:
		var k [20]byte
		if decodeHex(k[:], in.Value) {
			e.next = chain(m.sha1, k, idx)
			m.entries = append(m.entries, e)
		}
	case MD5:
		var k [16]byte
		if decodeHex(k[:], in.Value) {
			e.next = chain(m.md5, k, idx)
			m.entries = append(m.entries, e)
		}
	case IPv4, IPv6:
		if a, err := netip.ParseAddr(in.Value); err == nil {
			e.next = chain(m.ips, a.As16(), idx)
			m.entries = append(m.entries, e)
		}
	case CIDR:
		p, err := netip.ParsePrefix(in.Value)
		if err != nil {
			return
		}
		p = p.Masked()
		// IPv4 networks are keyed in the 16-byte form (::ffff:a.b.c.d), their
		// lengths + 96, apart from the IPv6 ones (key + 1000).
		bits := p.Bits()
		if p.Addr().Is4() {
			bits += 96 + 1000
		}
		t := b.netsBy[bits]
		if t == nil {
			t = map[[16]byte]int32{}
			b.netsBy[bits] = t
		}
		e.value = p.String()
		e.next = chain(t, p.Addr().As16(), idx)
		m.entries = append(m.entries, e)
	case Domain:
		e.value = in.Value
		e.next = chain(m.domains, in.Value, idx)
		m.entries = append(m.entries, e)
	case URL:
		_, rest, ok := strings.Cut(in.Value, "://")
		if !ok {
			return
		}
		m.urlHosts[urlHost(rest)] = struct{}{}
		e.value = in.Value
		e.next = chain(m.urls, in.Value, idx)
		m.entries = append(m.entries, e)
	}
}

// chain puts idx at the head of key's list and returns the previous head.
func chain[K comparable](m map[K]int32, key K, idx int32) int32 {
	prev, ok := m[key]
	m[key] = idx
	if !ok {
		return -1
	}
	return prev
}

// Build returns the Matcher. The Builder must not be used after.
func (b *Builder) Build() *Matcher {
	m := b.m
	for bits, t := range b.netsBy {
		m.nets = append(m.nets, netTable{v4: bits >= 1000, bits: bits % 1000, m: t})
	}
	for i := 1; i < len(m.nets); i++ {
		for j := i; j > 0 && m.nets[j].bits > m.nets[j-1].bits; j-- {
			m.nets[j], m.nets[j-1] = m.nets[j-1], m.nets[j]
		}
	}
	b.m = nil
	return m
}

// Len returns the number of indicators in the matcher.
func (m *Matcher) Len() int { return len(m.entries) }

// Match is one indicator found in one event.
type Match struct {
	Type       Type
	Indicator  string // the indicator's normalized value
	Source     string
	Confidence int
	ValidUntil time.Time
	// Field names where the value was found: Hashes, DestinationIp,
	// QueryName, QueryResults, DestinationHostname, cmdline, ScriptBlockText…
	Field string
	// Value is the matched value as the event holds it (a host of a URL, a
	// hash, an address).
	Value                       string
	Techniques, Groups, Malware []string
}

// Match appends to dst the indicators found in ev and returns it: process
// and file hashes, remote and source addresses, DNS queries and answers,
// destination host names, and the URLs, hosts, addresses and hashes written
// in command lines and script text. A domain indicator matches its
// subdomains too. Each (indicator, field) pair appears once.
func (m *Matcher) Match(ev *telemetry.Event, dst []Match) []Match {
	var sc scan
	sc.m, sc.dst = m, dst
	if ev.Hashes != "" {
		sc.hashes("Hashes", ev.Hashes)
	}
	if ev.Cmdline != "" {
		sc.text("cmdline", ev.Cmdline)
	}
	for _, f := range ev.Fields.List() {
		if f.Value == "" {
			continue
		}
		switch f.Name {
		case "Hashes", "Hash", "sha256", "md5", "sha1":
			if f.Value != ev.Hashes {
				sc.hashes(f.Name, f.Value)
			}
		case "DestinationIp", "SourceIp", "daddr", "saddr", "RemoteAddress", "IpAddress":
			sc.ip(f.Name, f.Value)
		case "DestinationHostname", "SourceHostname", "QueryName":
			sc.host(f.Name, f.Value)
		case "QueryResults":
			sc.answers(f.Name, f.Value)
		case "CommandLine":
			if f.Value != ev.Cmdline {
				sc.text(f.Name, f.Value)
			}
		case "ScriptBlockText", "Payload", "ContextInfo", "Url", "URL", "url":
			sc.text(f.Name, f.Value)
		}
	}
	return sc.dst
}

// scan is one event's matching state.
type scan struct {
	m   *Matcher
	dst []Match
	buf [256]byte
}

// emit appends the entries of the list at idx that are not expired.
func (s *scan) emit(idx int32, field, value string) {
	var now int64
	for ; idx >= 0; idx = s.m.entries[idx].next {
		e := &s.m.entries[idx]
		if e.validUntil != 0 {
			if now == 0 {
				now = s.m.Now().UnixNano()
			}
			if now >= e.validUntil {
				continue
			}
		}
		ind := e.value
		if ind == "" {
			ind = s.hashValue(e.typ, value)
		}
		dup := false
		for i := range s.dst {
			d := &s.dst[i]
			if d.Field == field && d.Indicator == ind && d.Type == e.typ && d.Source == s.m.sources[e.source] {
				dup = true
				break
			}
		}
		if dup {
			continue
		}
		l := s.m.links[e.links]
		mt := Match{Type: e.typ, Indicator: ind, Source: s.m.sources[e.source], Confidence: int(e.confidence),
			Field: field, Value: value, Techniques: l.techniques, Groups: l.groups, Malware: l.malware}
		if e.validUntil != 0 {
			mt.ValidUntil = time.Unix(0, e.validUntil).UTC()
		}
		s.dst = append(s.dst, mt)
	}
}

// hashValue gives a hash or address indicator's value from the event's
// matched text.
func (s *scan) hashValue(t Type, value string) string {
	switch t {
	case IPv4, IPv6:
		if a, err := netip.ParseAddr(strings.TrimPrefix(value, "::ffff:")); err == nil {
			return a.Unmap().String()
		}
	}
	return strings.ToLower(value)
}

// hashes reads "SHA256=…,MD5=…" (or a bare hex hash).
func (s *scan) hashes(field, v string) {
	for v != "" {
		var part string
		part, v, _ = strings.Cut(v, ",")
		if i := strings.IndexByte(part, '='); i >= 0 {
			part = part[i+1:]
		}
		s.hash(field, strings.TrimSpace(part))
	}
}

func (s *scan) hash(field, h string) {
	switch len(h) {
	case 64:
		var k [32]byte
		if decodeHex(k[:], h) {
			if idx, ok := s.m.sha256[k]; ok {
				s.emit(idx, field, h)
			}
		}
	case 40:
		var k [20]byte
		if decodeHex(k[:], h) {
			if idx, ok := s.m.sha1[k]; ok {
				s.emit(idx, field, h)
			}
		}
	case 32:
		var k [16]byte
		if decodeHex(k[:], h) {
			if idx, ok := s.m.md5[k]; ok {
				s.emit(idx, field, h)
			}
		}
	}
}

// ip looks an address up among the addresses and the networks.
func (s *scan) ip(field, v string) {
	a, err := netip.ParseAddr(v)
	if err != nil {
		return
	}
	s.addr(field, v, a.WithZone(""))
}

func (s *scan) addr(field, v string, a netip.Addr) {
	k := a.Unmap().As16()
	if idx, ok := s.m.ips[k]; ok {
		s.emit(idx, field, v)
	}
	if len(s.m.nets) == 0 {
		return
	}
	is4 := a.Unmap().Is4()
	for _, t := range s.m.nets {
		if t.v4 != is4 {
			continue
		}
		mk := mask(k, t.bits)
		if idx, ok := t.m[mk]; ok {
			s.emit(idx, field, v)
		}
	}
}

func mask(k [16]byte, bits int) [16]byte {
	for i := 0; i < 16; i++ {
		switch {
		case bits >= 8:
			bits -= 8
		case bits <= 0:
			k[i] = 0
		default:
			k[i] &= byte(0xff << (8 - bits))
			bits = 0
		}
	}
	return k
}

// host looks a host name (or address) up, with its parent domains.
func (s *scan) host(field, v string) {
	v = strings.TrimSuffix(strings.TrimSpace(v), ".")
	if v == "" {
		return
	}
	if a, err := netip.ParseAddr(v); err == nil {
		s.addr(field, v, a.WithZone(""))
		return
	}
	s.domain(field, v)
}

// domain looks up a host name and each parent domain of two labels or more.
func (s *scan) domain(field, v string) {
	if len(v) > len(s.buf) || len(s.m.domains) == 0 {
		return
	}
	n := copy(s.buf[:], v)
	b := s.buf[:n]
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 32
		}
	}
	for off := 0; ; {
		if idx, ok := s.m.domains[string(b[off:])]; ok {
			s.emit(idx, field, v)
		}
		dot := strings.IndexByte(string(b[off:]), '.')
		if dot < 0 {
			return
		}
		off += dot + 1
		if strings.IndexByte(string(b[off:]), '.') < 0 {
			return // a single label (a TLD) is never an indicator
		}
	}
}

// answers reads Sysmon's QueryResults: "type:  5 cname.example;::ffff:1.2.3.4;".
func (s *scan) answers(field, v string) {
	for v != "" {
		var part string
		part, v, _ = strings.Cut(v, ";")
		part = strings.TrimSpace(part)
		if strings.HasPrefix(part, "type:") {
			// "type:  5 name": the record type then the name.
			rest := strings.TrimSpace(part[len("type:"):])
			if i := strings.IndexByte(rest, ' '); i >= 0 {
				part = strings.TrimSpace(rest[i+1:])
			} else {
				continue
			}
		}
		if part != "" {
			s.host(field, part)
		}
	}
}

// text finds URLs, host names, IPv4 addresses and hashes written in a
// command line or script.
func (s *scan) text(field, v string) {
	if len(s.m.urls) > 0 {
		for rest := v; ; {
			i := strings.Index(rest, "://")
			if i < 0 {
				break
			}
			start := i
			for start > 0 && isSchemeChar(rest[start-1]) {
				start--
			}
			end := i + 3
			for end < len(rest) && !isURLStop(rest[end]) {
				end++
			}
			if start < i && s.knownURLHost(rest[i+3:end]) {
				raw := rest[start:end]
				if u, err := NormalizeURL(raw); err == nil {
					if idx, ok := s.m.urls[u]; ok {
						s.emit(idx, field, raw)
					}
				}
			}
			rest = rest[end:]
		}
	}
	// Tokens of host-name characters: domains, IPv4 addresses, hashes.
	for i := 0; i < len(v); {
		for i < len(v) && !isHostChar(v[i]) {
			i++
		}
		j := i
		dots := 0
		for j < len(v) && isHostChar(v[j]) {
			if v[j] == '.' {
				dots++
			}
			j++
		}
		tok := strings.Trim(v[i:j], ".-")
		i = j
		if len(tok) < 4 {
			continue
		}
		if dots == 0 {
			if len(tok) == 32 || len(tok) == 40 || len(tok) == 64 {
				s.hash(field, tok)
			}
			continue
		}
		c := tok[len(tok)-1]
		if '0' <= c && c <= '9' {
			if len(s.m.ips) > 0 || len(s.m.nets) > 0 {
				if a, err := netip.ParseAddr(tok); err == nil {
					s.addr(field, tok, a)
				}
			}
			continue
		}
		s.domain(field, tok)
	}
}

// urlHost returns the host[:port] part of what follows a URL's "://".
func urlHost(rest string) string {
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		rest = rest[i+1:]
	}
	if strings.HasPrefix(rest, "[") {
		if i := strings.IndexByte(rest, ']'); i >= 0 {
			return rest[:i+1]
		}
		return rest
	}
	if i := strings.IndexByte(rest, ':'); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// knownURLHost reports whether the host of a URL's rest (after "://"),
// lower-cased, is the host of a URL indicator.
func (s *scan) knownURLHost(rest string) bool {
	h := urlHost(rest)
	if len(h) > len(s.buf) {
		return false
	}
	b := s.buf[:copy(s.buf[:], h)]
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 32
		}
	}
	_, ok := s.m.urlHosts[string(b)]
	return ok
}

func isSchemeChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'
}

func isURLStop(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', '"', '\'', '`', '<', '>', '|', '^', '{', '}', '\\', ')', ']', ',', ';':
		return true
	}
	return c < 0x20 || c == 0x7f
}

func isHostChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_'
}

// decodeHex decodes exactly len(dst) bytes of hex from s.
func decodeHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := range dst {
		hi, ok1 := unhex(s[2*i])
		lo, ok2 := unhex(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
