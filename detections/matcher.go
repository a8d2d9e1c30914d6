package detections

import (
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// op is how one compiled value compares with a field.
type op uint8

const (
	opEq       op = iota // whole value equal
	opPrefix             // starts with
	opSuffix             // ends with
	opContains           // contains
	opGlob               // wildcard pattern
	opRegex              // regular expression on the raw value
	opCIDR               // IP address in network
	opLT                 // numeric comparisons
	opLTE
	opGT
	opGTE
	opNull     // absent or empty
	opExists   // present (want) or absent (!want)
	opFieldRef // compares with another field's value (see refOp)
	opNever    // never matches (unresolved placeholder)
)

// matcher is one compiled value. Strings are case-folded unless cased.
type matcher struct {
	op    op
	cased bool
	s     string // literal for eq/prefix/suffix/contains; field name for fieldref
	segs  []seg  // glob
	re    *regexp.Regexp
	net   netip.Prefix
	num   float64
	want  bool // exists
	refOp op   // fieldref: opEq, opPrefix, opSuffix or opContains
	refID int  // fieldref: the other field's id
	// reLits are literals one of which every regex match contains (folded).
	reLits []string
	// reSets are literal sets every regex match has a string of each of
	// (folded; rarest first): all are checked before the regex runs.
	reSets [][]string
	// reSetIDs number the strings of reSets like contains matchers (cid),
	// for the engine to answer from its scan (see regexRuledOut).
	reSetIDs [][]int32
	// shape answers or rules out some regular expressions cheaply.
	shape reShape
	// cid numbers a case-insensitive contains of a field leaf (0: none):
	// the engine answers it from its prefilter's scan.
	cid int32
}

// matchString tests a present field value. raw is as recorded, folded its
// case-folded form.
func (m *matcher) matchString(raw, folded string) bool {
	v := folded
	if m.cased {
		v = raw
	}
	switch m.op {
	case opEq:
		return v == m.s
	case opPrefix:
		return strings.HasPrefix(v, m.s)
	case opSuffix:
		return strings.HasSuffix(v, m.s)
	case opContains:
		return strings.Contains(v, m.s)
	case opGlob:
		return globMatch(m.segs, v)
	case opRegex:
		if ans, ok, possible := m.shape.decided(raw); ok || !possible {
			return ans
		}
		// Every match contains one string of each of reSets (and of
		// reLits): cheap tests before the regular expression runs.
		if len(m.reSets) == 0 && !containsOneOf(folded, m.reLits) {
			return false
		}
		for _, set := range m.reSets {
			if !containsOneOf(folded, set) {
				return false
			}
		}
		return m.re.MatchString(raw)
	case opCIDR:
		a, err := netip.ParseAddr(trimAddr(raw))
		return err == nil && m.net.Contains(a.Unmap())
	case opLT, opLTE, opGT, opGTE:
		f, err := strconv.ParseFloat(strings.TrimSpace(raw), 64)
		if err != nil {
			return false
		}
		switch m.op {
		case opLT:
			return f < m.num
		case opLTE:
			return f <= m.num
		case opGT:
			return f > m.num
		}
		return f >= m.num
	case opNull:
		return raw == ""
	case opExists:
		return m.want
	}
	return false
}

// matchRef compares a field value with the referenced field's value.
func (m *matcher) matchRef(raw, folded, refRaw, refFolded string) bool {
	v, r := folded, refFolded
	if m.cased {
		v, r = raw, refRaw
	}
	switch m.refOp {
	case opPrefix:
		return strings.HasPrefix(v, r)
	case opSuffix:
		return strings.HasSuffix(v, r)
	case opContains:
		return strings.Contains(v, r)
	}
	return v == r
}

// matchAbsent tells whether the matcher holds for an absent field.
func (m *matcher) matchAbsent() bool {
	switch m.op {
	case opNull:
		return true
	case opExists:
		return !m.want
	}
	return false
}

// containsOneOf reports whether v contains one of lits (true when lits is
// empty).
func containsOneOf(v string, lits []string) bool {
	for _, l := range lits {
		if strings.Contains(v, l) {
			return true
		}
	}
	return len(lits) == 0
}

func trimAddr(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "[")
	s = strings.TrimSuffix(s, "]")
	if i := strings.IndexByte(s, '%'); i >= 0 {
		s = s[:i]
	}
	return s
}

// appendLiterals appends to dst case-folded strings one of which every
// value this matcher accepts contains; ok is false when there are none (the
// matcher cannot be prefiltered). A case-insensitive matcher's strings are
// folded when compiled: only a cased one's are folded here.
func (m *matcher) appendLiterals(dst []string) ([]string, bool) {
	var l string
	switch m.op {
	case opEq, opPrefix, opSuffix, opContains:
		l = m.s
	case opGlob:
		l = longestLiteral(m.segs)
	case opRegex:
		return append(dst, m.reLits...), len(m.reLits) > 0
	}
	if m.cased {
		l = fold(l)
	}
	return append(dst, l), l != ""
}
