package intel

import (
	"errors"
	"fmt"
	"strings"
)

// Comparison is one comparison of a STIX pattern: object:property op value.
type Comparison struct {
	Object   string // ipv4-addr, file, domain-name…
	Property string // value, hashes.SHA-256…
	Op       string // = or ISSUBSET
	Value    string
}

// ErrUnsupportedPattern marks a valid STIX pattern that Quarry cannot turn
// into indicators (an AND, a qualifier, an operator other than = or
// ISSUBSET, an object or property it does not match).
var ErrUnsupportedPattern = errors.New("unsupported STIX pattern")

// ParsePattern reads a STIX 2.1 pattern made of ORs of comparisons —
// "[file:hashes.'SHA-256' = '…' OR url:value = '…'] OR [domain-name:value =
// '…']" — into its comparisons. A pattern outside that subset returns an
// error wrapping ErrUnsupportedPattern; a malformed one another error.
func ParsePattern(s string) ([]Comparison, error) {
	p := patternParser{src: s}
	if err := p.lex(); err != nil {
		return nil, err
	}
	var out []Comparison
	if err := p.expr(&out, false); err != nil {
		return nil, err
	}
	if p.pos != len(p.toks) {
		return nil, p.unsupportedOrBad(p.toks[p.pos])
	}
	return out, nil
}

type token struct {
	kind byte // '[' ']' '(' ')' 's' string, 'w' word, 'o' operator
	text string
	at   int
}

type patternParser struct {
	src   string
	toks  []token
	pos   int
	depth int
}

func (p *patternParser) lex() error {
	s := p.src
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '[' || c == ']' || c == '(' || c == ')':
			p.toks = append(p.toks, token{kind: c, text: string(c), at: i})
			i++
		case c == '\'':
			var b strings.Builder
			j := i + 1
			for ; j < len(s); j++ {
				if s[j] == '\\' && j+1 < len(s) && (s[j+1] == '\'' || s[j+1] == '\\') {
					b.WriteByte(s[j+1])
					j++
					continue
				}
				if s[j] == '\'' {
					break
				}
				b.WriteByte(s[j])
			}
			if j >= len(s) {
				return fmt.Errorf("pattern: unterminated string at offset %d", i)
			}
			p.toks = append(p.toks, token{kind: 's', text: b.String(), at: i})
			i = j + 1
		case c == '=' || c == '!' || c == '<' || c == '>':
			j := i + 1
			if j < len(s) && s[j] == '=' {
				j++
			}
			p.toks = append(p.toks, token{kind: 'o', text: s[i:j], at: i})
			i = j
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\r\n[]()='!<>", rune(s[j])) {
				j++
			}
			// An object path may hold quoted components: file:hashes.'SHA-256'.
			for j < len(s) && s[j] == '\'' && j > i && s[j-1] == '.' {
				k := strings.IndexByte(s[j+1:], '\'')
				if k < 0 {
					return fmt.Errorf("pattern: unterminated path component at offset %d", j)
				}
				j += k + 2
				for j < len(s) && !strings.ContainsRune(" \t\r\n[]()='!<>", rune(s[j])) {
					j++
				}
			}
			if j == i {
				return fmt.Errorf("pattern: unexpected %q at offset %d", c, i)
			}
			p.toks = append(p.toks, token{kind: 'w', text: s[i:j], at: i})
			i = j
		}
	}
	if len(p.toks) == 0 {
		return errors.New("pattern: empty")
	}
	return nil
}

func (p *patternParser) peek() (token, bool) {
	if p.pos < len(p.toks) {
		return p.toks[p.pos], true
	}
	return token{}, false
}

// unsupportedOrBad names a token where the supported grammar stops.
func (p *patternParser) unsupportedOrBad(t token) error {
	switch strings.ToUpper(t.text) {
	case "AND", "FOLLOWEDBY", "WITHIN", "REPEATS", "START", "STOP", "NOT", "LIKE", "MATCHES",
		"ISSUPERSET", "IN", "EXISTS", "!=", "<", ">", "<=", ">=":
		return fmt.Errorf("%w: %s at offset %d", ErrUnsupportedPattern, t.text, t.at)
	}
	return fmt.Errorf("pattern: unexpected %q at offset %d", t.text, t.at)
}

// expr reads observations (or, inside brackets, comparisons) joined by OR.
func (p *patternParser) expr(out *[]Comparison, inside bool) error {
	for depth := 0; ; depth++ {
		if depth > 1000 {
			return errors.New("pattern: too long")
		}
		if err := p.term(out, inside); err != nil {
			return err
		}
		t, ok := p.peek()
		if !ok || t.kind != 'w' || !strings.EqualFold(t.text, "OR") {
			return nil
		}
		p.pos++
	}
}

func (p *patternParser) term(out *[]Comparison, inside bool) error {
	t, ok := p.peek()
	if !ok {
		return errors.New("pattern: ends early")
	}
	switch {
	case t.kind == '(':
		p.pos++
		if p.depth++; p.depth > 100 {
			return errors.New("pattern: nested too deep")
		}
		defer func() { p.depth-- }()
		if err := p.expr(out, inside); err != nil {
			return err
		}
		return p.expect(')')
	case t.kind == '[' && !inside:
		p.pos++
		if err := p.expr(out, true); err != nil {
			return err
		}
		return p.expect(']')
	case t.kind == 'w' && inside:
		return p.comparison(out)
	}
	if t.kind == 'w' {
		return fmt.Errorf("pattern: comparison %q outside brackets at offset %d", t.text, t.at)
	}
	return p.unsupportedOrBad(t)
}

func (p *patternParser) expect(kind byte) error {
	t, ok := p.peek()
	if !ok {
		return fmt.Errorf("pattern: missing %q at the end", kind)
	}
	if t.kind != kind {
		return p.unsupportedOrBad(t)
	}
	p.pos++
	return nil
}

func (p *patternParser) comparison(out *[]Comparison) error {
	path := p.toks[p.pos]
	p.pos++
	obj, prop, ok := strings.Cut(path.text, ":")
	if !ok || obj == "" || prop == "" {
		return fmt.Errorf("pattern: %q at offset %d is not an object path", path.text, path.at)
	}
	op, ok := p.peek()
	if !ok {
		return errors.New("pattern: comparison without operator")
	}
	if strings.EqualFold(op.text, "NOT") {
		return p.unsupportedOrBad(op)
	}
	if !(op.kind == 'o' && op.text == "=") && !(op.kind == 'w' && strings.EqualFold(op.text, "ISSUBSET")) {
		return p.unsupportedOrBad(op)
	}
	p.pos++
	val, ok := p.peek()
	if !ok || val.kind != 's' {
		if ok && val.kind == '(' {
			return fmt.Errorf("%w: set value at offset %d", ErrUnsupportedPattern, val.at)
		}
		return fmt.Errorf("pattern: %s needs a quoted string at offset %d", op.text, op.at)
	}
	p.pos++
	*out = append(*out, Comparison{Object: obj, Property: unquotePath(prop), Op: strings.ToUpper(op.text), Value: val.text})
	return nil
}

// unquotePath drops the quotes of a path's components: hashes.'SHA-256'.
func unquotePath(s string) string { return strings.ReplaceAll(s, "'", "") }

// Indicator returns the type and normalized value a comparison names, or an
// error wrapping ErrUnsupportedPattern for one Quarry does not match.
func (c Comparison) Indicator() (Type, string, error) {
	prop := strings.ToLower(c.Property)
	var t Type
	switch strings.ToLower(c.Object) {
	case "file":
		switch strings.ReplaceAll(strings.ReplaceAll(prop, "-", ""), "_", "") {
		case "hashes.sha256":
			t = SHA256
		case "hashes.sha1":
			t = SHA1
		case "hashes.md5":
			t = MD5
		}
	case "ipv4-addr", "ipv6-addr":
		if prop == "value" {
			t = IPv4
			if strings.EqualFold(c.Object, "ipv6-addr") {
				t = IPv6
			}
			if strings.Contains(c.Value, "/") {
				v, err := Normalize(CIDR, c.Value)
				if err != nil {
					return "", "", err
				}
				// A /32 or /128 is one address.
				if strings.HasSuffix(v, "/32") && t == IPv4 || strings.HasSuffix(v, "/128") && t == IPv6 {
					return t, strings.TrimSuffix(strings.TrimSuffix(v, "/32"), "/128"), nil
				}
				return CIDR, v, nil
			}
		}
	case "domain-name":
		if prop == "value" {
			t = Domain
		}
	case "url":
		if prop == "value" {
			t = URL
		}
	}
	if t == "" {
		return "", "", fmt.Errorf("%w: %s:%s", ErrUnsupportedPattern, c.Object, c.Property)
	}
	if c.Op != "=" {
		return "", "", fmt.Errorf("%w: %s on %s:%s", ErrUnsupportedPattern, c.Op, c.Object, c.Property)
	}
	v, err := Normalize(t, c.Value)
	return t, v, err
}
