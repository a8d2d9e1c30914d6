package detections

import (
	"strings"
	"unicode/utf8"
)

// segKind is a piece of a wildcard pattern.
type segKind uint8

const (
	segLit  segKind = iota // literal text
	segStar                // * any run of characters
	segOne                 // ? exactly one character
)

type seg struct {
	kind segKind
	lit  string
}

// parseWildcards splits a Sigma string value into literals and wildcards:
// * and ? are wildcards, \* \? and \\ escape them; a backslash before any
// other character is a literal backslash.
func parseWildcards(s string) []seg {
	var out []seg
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			out = append(out, seg{kind: segLit, lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\':
			if i+1 < len(s) && (s[i+1] == '*' || s[i+1] == '?' || s[i+1] == '\\') {
				lit.WriteByte(s[i+1])
				i++
			} else {
				lit.WriteByte('\\')
			}
		case '*':
			flush()
			if len(out) == 0 || out[len(out)-1].kind != segStar {
				out = append(out, seg{kind: segStar})
			}
		case '?':
			flush()
			out = append(out, seg{kind: segOne})
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	return out
}

// hasWildcards reports whether segs contain * or ?.
func hasWildcards(segs []seg) bool {
	for _, s := range segs {
		if s.kind != segLit {
			return true
		}
	}
	return false
}

// litText joins the literal segments (for patterns without wildcards).
func litText(segs []seg) string {
	var b strings.Builder
	for _, s := range segs {
		b.WriteString(s.lit)
	}
	return b.String()
}

// globMatch matches s against segs (already folded as s is).
func globMatch(segs []seg, s string) bool {
	if len(segs) == 0 {
		return s == ""
	}
	switch segs[0].kind {
	case segLit:
		if !strings.HasPrefix(s, segs[0].lit) {
			return false
		}
		return globMatch(segs[1:], s[len(segs[0].lit):])
	case segOne:
		if s == "" {
			return false
		}
		_, n := utf8.DecodeRuneInString(s)
		return globMatch(segs[1:], s[n:])
	}
	// segStar: skip stars, then try each position where the next literal occurs.
	rest := segs[1:]
	if len(rest) == 0 {
		return true
	}
	if rest[0].kind == segLit {
		lit := rest[0].lit
		for off := 0; ; {
			i := strings.Index(s[off:], lit)
			if i < 0 {
				return false
			}
			if globMatch(rest[1:], s[off+i+len(lit):]) {
				return true
			}
			off += i + 1
		}
	}
	for i := 0; i <= len(s); i++ {
		if globMatch(rest, s[i:]) {
			return true
		}
		if i < len(s) {
			_, n := utf8.DecodeRuneInString(s[i:])
			i += n - 1
		}
	}
	return false
}

// longestLiteral returns the longest literal segment.
func longestLiteral(segs []seg) string {
	best := ""
	for _, s := range segs {
		if s.kind == segLit && len(s.lit) > len(best) {
			best = s.lit
		}
	}
	return best
}
