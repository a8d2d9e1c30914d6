package detections

import (
	"regexp/syntax"
	"unicode/utf8"
)

// reShape holds what the engine can tell about a regular expression without
// running it: an exact answer for the common ".{N,}" length test, or a
// necessary run of bytes from one class ("[a-f0-9]{64}") checked before the
// regular expression runs.
type reShape struct {
	// minRun > 0: the expression is exactly .{minRun,}, unanchored: it
	// matches when some line (the whole value when runAny, as under (?s))
	// holds at least minRun characters.
	minRun int
	runAny bool
	// classLen > 0: every match holds classLen consecutive bytes of class.
	class    *[256]bool
	classLen int
}

// minClassRun is the shortest class run worth a precheck.
const minClassRun = 8

// analyzeRegex returns the shape of expr (already carrying its flags).
func analyzeRegex(expr string) reShape {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return reShape{}
	}
	for re.Op == syntax.OpCapture {
		re = re.Sub[0]
	}
	if re.Op == syntax.OpRepeat && re.Max == -1 && re.Min >= 1 {
		switch re.Sub[0].Op {
		case syntax.OpAnyCharNotNL:
			return reShape{minRun: re.Min}
		case syntax.OpAnyChar:
			return reShape{minRun: re.Min, runAny: true}
		}
	}
	var sh reShape
	sh.findClassRun(re, 0)
	return sh
}

// findClassRun looks for the longest required repetition of an ASCII
// character class among re and the items of the concatenations it is made
// of.
func (sh *reShape) findClassRun(re *syntax.Regexp, depth int) {
	if depth > 20 {
		return
	}
	switch re.Op {
	case syntax.OpCapture:
		sh.findClassRun(re.Sub[0], depth+1)
	case syntax.OpConcat:
		for _, s := range re.Sub {
			sh.findClassRun(s, depth+1)
		}
	case syntax.OpRepeat:
		sub := re.Sub[0]
		if sub.Op != syntax.OpCharClass || re.Min < minClassRun || re.Min <= sh.classLen {
			return
		}
		var cls [256]bool
		for i := 0; i+1 < len(sub.Rune); i += 2 {
			lo, hi := sub.Rune[i], sub.Rune[i+1]
			if hi >= utf8.RuneSelf {
				return // a class with non-ASCII characters: runs are not bytes
			}
			for c := lo; c <= hi; c++ {
				cls[c] = true
			}
		}
		sh.class, sh.classLen = &cls, re.Min
	}
}

// decided reports whether the shape answers the expression for s on its own
// and, if so, the answer; otherwise possible tells whether a match is still
// possible (false: the regular expression need not run).
func (sh *reShape) decided(s string) (answer, decided, possible bool) {
	if sh.minRun > 0 {
		return hasLongLine(s, sh.minRun, sh.runAny), true, true
	}
	if sh.classLen > 0 {
		return false, false, hasClassRun(s, sh.class, sh.classLen)
	}
	return false, false, true
}

// hasLongLine reports whether s holds n characters in a row, not counting
// newlines unless any (invalid UTF-8 bytes count one each, as in regexp).
func hasLongLine(s string, n int, any bool) bool {
	if len(s) < n {
		return false
	}
	run := 0
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\n' && !any:
			run = 0
			i++
			continue
		case c < utf8.RuneSelf:
			i++
		default:
			_, w := utf8.DecodeRuneInString(s[i:])
			i += w
		}
		if run++; run >= n {
			return true
		}
	}
	return false
}

// hasClassRun reports whether s holds n consecutive bytes of cls. It tests
// the last byte of each n-byte window first: a byte outside cls at j rules
// out every window holding j, so the next candidate starts at j+1 and most
// bytes of a text without long runs are never read.
func hasClassRun(s string, cls *[256]bool, n int) bool {
	// Invariant: s[p:good] are all in cls.
	p, good := 0, 0
	for p+n <= len(s) {
		j := p + n - 1
		for j >= good && cls[s[j]] {
			j--
		}
		if j < good {
			return true
		}
		p, good = j+1, p+n
	}
	return false
}
