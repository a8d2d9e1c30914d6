package detections

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"unicode/utf16"

	"github.com/quarry-sec/quarry/detections/sigma"
)

// leaf is one compiled field matcher: a field (or every field, for
// keywords) against groups of values. Without the all modifier there is one
// group and any matcher in it suffices; with all every group must match
// (each group is the expansions of one value).
type leaf struct {
	field   string
	fid     int
	keyword bool
	all     bool
	groups  [][]matcher
}

// valueCompiler turns field matchers into leaves; it records warnings.
type valueCompiler struct {
	placeholders map[string][]string
	warnings     []string
	fieldID      func(name string) int
	// plain leaves out the shortcuts that spare running regular
	// expressions (for the reference evaluator).
	plain bool
}

const maxExpansions = 1024

func (vc *valueCompiler) compileField(fm *sigma.FieldMatch) (*leaf, error) {
	l := &leaf{field: fm.Field, keyword: fm.Field == "", all: fm.Has("all")}
	if !l.keyword {
		l.fid = vc.fieldID(fm.Field)
	}
	// Each value's matchers are appended to the leaf's one slice (one
	// group), or, with |all, compiled apart (a group a value).
	if l.all {
		l.groups = make([][]matcher, 0, len(fm.Values))
		for _, v := range fm.Values {
			ms, err := vc.compileValue(fm, v, nil)
			if err != nil {
				return nil, err
			}
			l.groups = append(l.groups, ms)
		}
	} else {
		ms := make([]matcher, 0, len(fm.Values))
		for _, v := range fm.Values {
			var err error
			if ms, err = vc.compileValue(fm, v, ms); err != nil {
				return nil, err
			}
		}
		l.groups = [][]matcher{ms}
	}
	if !l.keyword {
		for _, g := range l.groups {
			for i := range g {
				if m := &g[i]; m.op == opContains && !m.cased && m.s != "" {
					m.cid = containsIDs.Add(1)
				}
				// The strings a regular expression's matches must hold
				// are numbered like contains literals: the scan answers
				// them too.
				if m := &g[i]; m.op == opRegex {
					for _, set := range m.reSets {
						ids := make([]int32, len(set))
						for j := range set {
							ids[j] = containsIDs.Add(1)
						}
						m.reSetIDs = append(m.reSetIDs, ids)
					}
				}
			}
		}
	}
	return l, nil
}

// containsIDs numbers the case-insensitive contains matchers of field
// leaves process-wide, so that a rule set can map each to the literal its
// prefilter looks for (see ruleSet.cidPair).
var containsIDs atomic.Int32

// compileValue appends the matchers of one value to dst.
func (vc *valueCompiler) compileValue(fm *sigma.FieldMatch, v sigma.Value, dst []matcher) ([]matcher, error) {
	cased := fm.Has("cased")
	switch {
	case fm.Has("exists"):
		b, err := strconv.ParseBool(strings.ToLower(v.S))
		if err != nil || v.Null {
			return nil, fmt.Errorf("exists: want true or false, got %q", v.S)
		}
		return append(dst, matcher{op: opExists, want: b}), nil
	case v.Null:
		return append(dst, matcher{op: opNull}), nil
	case fm.Has("cidr"):
		p, err := netip.ParsePrefix(strings.TrimSpace(v.S))
		if err != nil {
			a, aerr := netip.ParseAddr(strings.TrimSpace(v.S))
			if aerr != nil {
				return nil, fmt.Errorf("cidr %q: %w", v.S, err)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		return append(dst, matcher{op: opCIDR, net: p.Masked()}), nil
	case fm.Has("lt"), fm.Has("lte"), fm.Has("gt"), fm.Has("gte"):
		f, err := strconv.ParseFloat(strings.TrimSpace(v.S), 64)
		if err != nil {
			return nil, fmt.Errorf("%s: want a number, got %q", strings.Join(fm.Modifiers, "|"), v.S)
		}
		o := opGTE
		switch {
		case fm.Has("lt"):
			o = opLT
		case fm.Has("lte"):
			o = opLTE
		case fm.Has("gt"):
			o = opGT
		}
		return append(dst, matcher{op: o, num: f}), nil
	case fm.Has("re"):
		flags := ""
		for _, f := range []string{"i", "m", "s"} {
			if fm.Has(f) {
				flags += f
			}
		}
		expr := v.S
		if flags != "" {
			expr = "(?" + flags + ")" + expr
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			return nil, fmt.Errorf("re %q: %w", v.S, err)
		}
		if vc.plain {
			return append(dst, matcher{op: opRegex, re: re}), nil
		}
		lits, _ := regexLiterals(expr)
		return append(dst, matcher{op: opRegex, re: re, reLits: lits, reSets: regexLiteralSets(expr), shape: analyzeRegex(expr)}), nil
	case fm.Has("fieldref"):
		ro := opEq
		switch {
		case fm.Has("contains"):
			ro = opContains
		case fm.Has("startswith"):
			ro = opPrefix
		case fm.Has("endswith"):
			ro = opSuffix
		}
		return append(dst, matcher{op: opFieldRef, refOp: ro, refID: vc.fieldID(v.S), s: v.S, cased: cased}), nil
	}
	return vc.compileString(fm, v.S, cased, dst)
}

func (vc *valueCompiler) compileString(fm *sigma.FieldMatch, s string, cased bool, dst []matcher) ([]matcher, error) {
	alts := []string{s}
	if fm.Has("expand") {
		var never bool
		var err error
		alts, never, err = vc.expand(s)
		if err != nil {
			return nil, err
		}
		if never {
			return append(dst, matcher{op: opNever}), nil
		}
	}
	out := slices.Grow(dst, len(alts))
	for _, a := range alts {
		vals := [][]seg{parseWildcards(a)}
		for _, mod := range fm.Modifiers {
			var err error
			switch mod {
			case "wide", "utf16le", "utf16be", "utf16", "base64", "base64offset":
				vals, err = encodeAll(vals, mod)
				if mod == "base64" || mod == "base64offset" {
					cased = true
				}
			case "windash":
				vals, err = windashAll(vals)
			}
			if err != nil {
				return nil, fmt.Errorf("%s %q: %w", mod, a, err)
			}
		}
		for _, segs := range vals {
			out = append(out, makeStringMatcher(segs, fm, cased))
		}
	}
	if n := len(out) - len(dst); n > maxExpansions {
		return nil, fmt.Errorf("value %q expands to %d patterns (limit %d)", s, n, maxExpansions)
	}
	return out, nil
}

// makeStringMatcher applies contains/startswith/endswith (and the implicit
// contains of keywords) and picks the cheapest comparison.
func makeStringMatcher(segs []seg, fm *sigma.FieldMatch, cased bool) matcher {
	contains := fm.Has("contains") || (fm.Field == "" && !fm.Has("startswith") && !fm.Has("endswith"))
	// The value's segments with the modifiers' wildcards, folded unless
	// cased, in a buffer on the stack: only a glob keeps its segments (a
	// copy), the other matchers one string.
	var buf [8]seg
	out := buf[:0]
	if contains || fm.Has("endswith") {
		if len(segs) == 0 || segs[0].kind != segStar {
			out = append(out, seg{kind: segStar})
		}
	}
	out = append(out, segs...)
	if contains || fm.Has("startswith") {
		if len(out) == 0 || out[len(out)-1].kind != segStar {
			out = append(out, seg{kind: segStar})
		}
	}
	if !cased {
		for i := range out {
			out[i].lit = fold(out[i].lit)
		}
	}
	segs = out
	m := matcher{cased: cased}
	n := len(segs)
	switch {
	case n == 0:
		m.op = opNull
	case !hasWildcards(segs):
		m.op, m.s = opEq, litText(segs)
	case n == 1 && segs[0].kind == segStar:
		m.op, m.s = opContains, "" // any value, present
	case n == 2 && segs[0].kind == segLit && segs[1].kind == segStar:
		m.op, m.s = opPrefix, segs[0].lit
	case n == 2 && segs[0].kind == segStar && segs[1].kind == segLit:
		m.op, m.s = opSuffix, segs[1].lit
	case n == 3 && segs[0].kind == segStar && segs[1].kind == segLit && segs[2].kind == segStar:
		m.op, m.s = opContains, segs[1].lit
	default:
		m.op, m.segs = opGlob, slices.Clone(segs)
	}
	return m
}

func encodeAll(vals [][]seg, mod string) ([][]seg, error) {
	var out [][]seg
	for _, segs := range vals {
		if hasWildcards(segs) {
			return nil, fmt.Errorf("wildcards cannot be encoded")
		}
		s := litText(segs)
		switch mod {
		case "wide", "utf16le":
			s = utf16Bytes(s, binary.LittleEndian, false)
		case "utf16be":
			s = utf16Bytes(s, binary.BigEndian, false)
		case "utf16":
			s = utf16Bytes(s, binary.LittleEndian, true)
		case "base64":
			s = base64.StdEncoding.EncodeToString([]byte(s))
		case "base64offset":
			for _, e := range base64Offsets(s) {
				out = append(out, []seg{{kind: segLit, lit: e}})
			}
			continue
		}
		out = append(out, []seg{{kind: segLit, lit: s}})
	}
	return out, nil
}

func utf16Bytes(s string, order binary.AppendByteOrder, bom bool) string {
	var b []byte
	if bom {
		b = order.AppendUint16(b, 0xfeff)
	}
	for _, u := range utf16.Encode([]rune(s)) {
		b = order.AppendUint16(b, u)
	}
	return string(b)
}

// base64Offsets returns the three base64 renderings of s as it would appear
// inside a longer base64 text, at each byte offset modulo 3, cut to the
// characters that do not depend on the surrounding bytes.
func base64Offsets(s string) []string {
	starts := [3]int{0, 2, 3}
	var out []string
	for i := 0; i < 3; i++ {
		enc := base64.StdEncoding.EncodeToString(append([]byte(strings.Repeat(" ", i)), s...))
		end := len(enc)
		switch (len(s) + i) % 3 {
		case 1:
			end -= 3
		case 2:
			end -= 2
		}
		if starts[i] > end {
			continue
		}
		out = append(out, enc[starts[i]:end])
	}
	return out
}

var dashes = []string{"-", "/", "\u2013", "\u2014", "\u2015"}

// windashAll expands every - or / that starts a word (regex \B[-/]\b) into
// the five dash characters Windows tools accept.
func windashAll(vals [][]seg) ([][]seg, error) {
	var out [][]seg
	for _, segs := range vals {
		exp := [][]seg{nil}
		for si, s := range segs {
			if s.kind != segLit {
				for i := range exp {
					exp[i] = append(exp[i], s)
				}
				continue
			}
			prevWord := false
			if si > 0 && segs[si-1].kind == segOne {
				prevWord = true // unknown character: leave the dash alone
			}
			pieces := [][]string{{""}}
			for i := 0; i < len(s.lit); i++ {
				c := s.lit[i]
				if (c == '-' || c == '/') && !prevWord && i+1 < len(s.lit) && isWordByte(s.lit[i+1]) {
					pieces = append(pieces, dashes, []string{""})
				} else {
					last := pieces[len(pieces)-1]
					last[0] += string(c)
				}
				prevWord = isWordByte(c)
			}
			var next [][]seg
			combos := []string{""}
			for _, p := range pieces {
				var nc []string
				for _, c := range combos {
					for _, alt := range p {
						nc = append(nc, c+alt)
					}
				}
				combos = nc
				if len(combos) > maxExpansions {
					return nil, fmt.Errorf("too many dashes to expand")
				}
			}
			for _, e := range exp {
				for _, c := range combos {
					next = append(next, append(append([]seg(nil), e...), seg{kind: segLit, lit: c}))
				}
			}
			exp = next
		}
		out = append(out, exp...)
	}
	return out, nil
}

func isWordByte(c byte) bool {
	return c == '_' || ('0' <= c && c <= '9') || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

var placeholderRE = regexp.MustCompile(`%[A-Za-z0-9_.-]+%`)

// expand replaces %placeholders% by their configured values (every
// combination). never is true when a placeholder has no value: the value
// then never matches and a warning is recorded.
func (vc *valueCompiler) expand(s string) (alts []string, never bool, err error) {
	alts = []string{s}
	for _, ph := range placeholderRE.FindAllString(s, -1) {
		name := strings.Trim(ph, "%")
		vals, ok := vc.placeholders[name]
		if !ok || len(vals) == 0 {
			vc.warnings = append(vc.warnings, fmt.Sprintf("expand: placeholder %s has no configured value; the value never matches", ph))
			return nil, true, nil
		}
		var next []string
		for _, a := range alts {
			for _, v := range vals {
				next = append(next, strings.Replace(a, ph, v, 1))
			}
		}
		if len(next) > maxExpansions {
			return nil, false, fmt.Errorf("expand %q: too many combinations", s)
		}
		alts = next
	}
	return alts, false, nil
}
