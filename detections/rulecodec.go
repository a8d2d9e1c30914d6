package detections

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/quarry-sec/quarry/detections/sigma"
)

// The rule cache stores parsed rules (sigma.Rule) in a compact binary form
// so that a warm load skips YAML parsing. Strings are length-prefixed;
// slices and maps carry their length plus one, 0 standing for nil, so that
// a decoded rule is deep-equal to the parsed one.

// errCorrupt is returned for a cache payload that does not decode.
var errCorrupt = errors.New("rule cache: corrupt payload")

type ruleEncoder struct{ b []byte }

func (e *ruleEncoder) uint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *ruleEncoder) int(v int)     { e.b = binary.AppendVarint(e.b, int64(v)) }
func (e *ruleEncoder) bool(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}
func (e *ruleEncoder) str(s string) { e.uint(uint64(len(s))); e.b = append(e.b, s...) }

// count writes a length with nil distinct from empty.
func (e *ruleEncoder) count(n int, isNil bool) {
	if isNil {
		e.uint(0)
		return
	}
	e.uint(uint64(n) + 1)
}

func (e *ruleEncoder) strs(ss []string) {
	e.count(len(ss), ss == nil)
	for _, s := range ss {
		e.str(s)
	}
}

func (e *ruleEncoder) ints(is []int) {
	e.count(len(is), is == nil)
	for _, i := range is {
		e.int(i)
	}
}

func (e *ruleEncoder) rule(r *sigma.Rule) {
	e.str(r.File)
	e.int(r.Line)
	for _, s := range []string{r.Title, r.ID, r.Name, r.Status, r.Description, r.Author, r.Date, r.Modified, r.Level, r.Confidence, r.Recommendations} {
		e.str(s)
	}
	e.strs(r.References)
	e.strs(r.Tags)
	e.ints(r.TagLines)
	e.count(len(r.SearchTags), r.SearchTags == nil)
	for _, st := range r.SearchTags {
		e.str(st.Search)
		e.strs(st.Tags)
		e.int(st.Line)
	}
	e.strs(r.FalsePositives)
	e.strs(r.Fields)
	for _, s := range []string{r.Logsource.Category, r.Logsource.Product, r.Logsource.Service, r.Logsource.Definition} {
		e.str(s)
	}
	d := &r.Detection
	e.count(len(d.Searches), d.Searches == nil)
	// Searches in Order first (deterministic), then any others.
	written := 0
	for _, name := range d.Order {
		if s, ok := d.Searches[name]; ok {
			e.str(name)
			e.search(s)
			written++
		}
	}
	if written != len(d.Searches) {
		for name, s := range d.Searches {
			if !containsStr(d.Order, name) {
				e.str(name)
				e.search(s)
			}
		}
	}
	e.strs(d.Order)
	e.expr(d.Condition)
	e.strs(d.ConditionText)
	e.int(d.ConditionLine)
	e.str(d.Timeframe)
	c := r.Correlation
	e.bool(c != nil)
	if c != nil {
		e.int(c.Line)
		e.str(c.Type)
		e.strs(c.Rules)
		e.strs(c.GroupBy)
		e.int(int(c.Timespan))
		e.count(len(c.Condition), c.Condition == nil)
		for _, cmp := range c.Condition {
			e.str(cmp.Op)
			e.b = binary.LittleEndian.AppendUint64(e.b, math.Float64bits(cmp.Value))
		}
		e.str(c.Field)
		e.count(len(c.Aliases), c.Aliases == nil)
		for k, m := range c.Aliases {
			e.str(k)
			e.count(len(m), m == nil)
			for k2, v := range m {
				e.str(k2)
				e.str(v)
			}
		}
		e.bool(c.Generate)
	}
}

func containsStr(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func (e *ruleEncoder) search(s *sigma.Search) {
	e.bool(s != nil)
	if s == nil {
		return
	}
	e.str(s.Name)
	e.int(s.Line)
	e.count(len(s.Selections), s.Selections == nil)
	for _, sel := range s.Selections {
		e.count(len(sel), sel == nil)
		for _, fm := range sel {
			e.bool(fm != nil)
			if fm == nil {
				continue
			}
			e.str(fm.Field)
			e.strs(fm.Modifiers)
			e.count(len(fm.Values), fm.Values == nil)
			for _, v := range fm.Values {
				e.str(v.S)
				e.bool(v.Null)
				e.bool(v.IsStr)
			}
			e.int(fm.Line)
		}
	}
}

// Expression tags.
const (
	exNil byte = iota
	exIdent
	exNot
	exAnd
	exOr
	exOf
)

func (e *ruleEncoder) expr(x sigma.Expr) {
	switch x := x.(type) {
	case nil:
		e.b = append(e.b, exNil)
	case *sigma.Ident:
		e.b = append(e.b, exIdent)
		e.str(x.Name)
	case *sigma.Not:
		e.b = append(e.b, exNot)
		e.expr(x.X)
	case *sigma.And:
		e.b = append(e.b, exAnd)
		e.exprs(x.X)
	case *sigma.Or:
		e.b = append(e.b, exOr)
		e.exprs(x.X)
	case *sigma.Of:
		e.b = append(e.b, exOf)
		e.bool(x.All)
		e.int(x.Count)
		e.str(x.Pattern)
		e.strs(x.Names)
	default:
		panic(fmt.Sprintf("rule cache: unknown condition type %T", x))
	}
}

func (e *ruleEncoder) exprs(xs []sigma.Expr) {
	e.count(len(xs), xs == nil)
	for _, x := range xs {
		e.expr(x)
	}
}

// ruleDecoder reads what ruleEncoder wrote. Strings are substrings of s
// (one allocation for the whole payload). Any malformed input sets err.
type ruleDecoder struct {
	s   string
	off int
	err error
}

func (d *ruleDecoder) fail() {
	if d.err == nil {
		d.err = errCorrupt
	}
	d.off = len(d.s)
}

func (d *ruleDecoder) uint() uint64 {
	var v uint64
	var shift uint
	for i := 0; i < binary.MaxVarintLen64; i++ {
		if d.off >= len(d.s) {
			d.fail()
			return 0
		}
		c := d.s[d.off]
		d.off++
		if c < 0x80 {
			return v | uint64(c)<<shift
		}
		v |= uint64(c&0x7f) << shift
		shift += 7
	}
	d.fail()
	return 0
}

func (d *ruleDecoder) int() int {
	u := d.uint()
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return int(x)
}

func (d *ruleDecoder) bool() bool {
	if d.off >= len(d.s) {
		d.fail()
		return false
	}
	c := d.s[d.off]
	d.off++
	if c > 1 {
		d.fail()
	}
	return c == 1
}

func (d *ruleDecoder) byte() byte {
	if d.off >= len(d.s) {
		d.fail()
		return 0
	}
	c := d.s[d.off]
	d.off++
	return c
}

func (d *ruleDecoder) str() string {
	n := d.uint()
	if n > uint64(len(d.s)-d.off) {
		d.fail()
		return ""
	}
	s := d.s[d.off : d.off+int(n)]
	d.off += int(n)
	return s
}

// count reads a length written by count: -1 for nil. A length larger than
// the bytes left is corrupt (every element takes at least one byte).
func (d *ruleDecoder) count() int {
	n := d.uint()
	if n == 0 {
		return -1
	}
	if n-1 > uint64(len(d.s)-d.off) {
		d.fail()
		return -1
	}
	return int(n - 1)
}

func (d *ruleDecoder) strs() []string {
	n := d.count()
	if n < 0 {
		return nil
	}
	ss := make([]string, n)
	for i := range ss {
		ss[i] = d.str()
	}
	return ss
}

func (d *ruleDecoder) ints() []int {
	n := d.count()
	if n < 0 {
		return nil
	}
	is := make([]int, n)
	for i := range is {
		is[i] = d.int()
	}
	return is
}

func (d *ruleDecoder) rule() *sigma.Rule {
	r := &sigma.Rule{}
	r.File = d.str()
	r.Line = d.int()
	for _, p := range []*string{&r.Title, &r.ID, &r.Name, &r.Status, &r.Description, &r.Author, &r.Date, &r.Modified, &r.Level, &r.Confidence, &r.Recommendations} {
		*p = d.str()
	}
	r.References = d.strs()
	r.Tags = d.strs()
	r.TagLines = d.ints()
	if n := d.count(); n >= 0 {
		r.SearchTags = make([]sigma.SearchTags, 0, n)
		for i := 0; i < n && d.err == nil; i++ {
			st := sigma.SearchTags{Search: d.str()}
			st.Tags = d.strs()
			st.Line = d.int()
			r.SearchTags = append(r.SearchTags, st)
		}
	}
	r.FalsePositives = d.strs()
	r.Fields = d.strs()
	for _, p := range []*string{&r.Logsource.Category, &r.Logsource.Product, &r.Logsource.Service, &r.Logsource.Definition} {
		*p = d.str()
	}
	det := &r.Detection
	if n := d.count(); n >= 0 {
		det.Searches = make(map[string]*sigma.Search, n)
		for i := 0; i < n && d.err == nil; i++ {
			name := d.str()
			det.Searches[name] = d.search()
		}
	}
	det.Order = d.strs()
	det.Condition = d.expr(0)
	det.ConditionText = d.strs()
	det.ConditionLine = d.int()
	det.Timeframe = d.str()
	if d.bool() {
		c := &sigma.Correlation{}
		c.Line = d.int()
		c.Type = d.str()
		c.Rules = d.strs()
		c.GroupBy = d.strs()
		c.Timespan = time.Duration(d.int())
		if n := d.count(); n >= 0 {
			c.Condition = make([]sigma.Comparison, n)
			for i := range c.Condition {
				c.Condition[i].Op = d.str()
				if d.off+8 > len(d.s) {
					d.fail()
					break
				}
				c.Condition[i].Value = math.Float64frombits(binary.LittleEndian.Uint64([]byte(d.s[d.off : d.off+8])))
				d.off += 8
			}
		}
		c.Field = d.str()
		if n := d.count(); n >= 0 {
			c.Aliases = make(map[string]map[string]string, n)
			for i := 0; i < n && d.err == nil; i++ {
				k := d.str()
				var m map[string]string
				if n2 := d.count(); n2 >= 0 {
					m = make(map[string]string, n2)
					for j := 0; j < n2 && d.err == nil; j++ {
						k2 := d.str()
						m[k2] = d.str()
					}
				}
				c.Aliases[k] = m
			}
		}
		c.Generate = d.bool()
		r.Correlation = c
	}
	return r
}

func (d *ruleDecoder) search() *sigma.Search {
	if !d.bool() {
		return nil
	}
	s := &sigma.Search{}
	s.Name = d.str()
	s.Line = d.int()
	if n := d.count(); n >= 0 {
		s.Selections = make([]sigma.Selection, n)
		for i := range s.Selections {
			m := d.count()
			if m < 0 {
				continue
			}
			sel := make(sigma.Selection, m)
			for j := range sel {
				if !d.bool() {
					continue
				}
				fm := &sigma.FieldMatch{}
				fm.Field = d.str()
				fm.Modifiers = d.strs()
				if k := d.count(); k >= 0 {
					fm.Values = make([]sigma.Value, k)
					for x := range fm.Values {
						fm.Values[x].S = d.str()
						fm.Values[x].Null = d.bool()
						fm.Values[x].IsStr = d.bool()
					}
				}
				fm.Line = d.int()
				sel[j] = fm
			}
			s.Selections[i] = sel
		}
	}
	return s
}

// maxExprDepth bounds the nesting a corrupt payload could claim.
const maxExprDepth = 1000

func (d *ruleDecoder) expr(depth int) sigma.Expr {
	if depth > maxExprDepth {
		d.fail()
		return nil
	}
	switch d.byte() {
	case exNil:
		return nil
	case exIdent:
		return &sigma.Ident{Name: d.str()}
	case exNot:
		return &sigma.Not{X: d.expr(depth + 1)}
	case exAnd:
		return &sigma.And{X: d.exprs(depth + 1)}
	case exOr:
		return &sigma.Or{X: d.exprs(depth + 1)}
	case exOf:
		o := &sigma.Of{}
		o.All = d.bool()
		o.Count = d.int()
		o.Pattern = d.str()
		o.Names = d.strs()
		return o
	}
	d.fail()
	return nil
}

func (d *ruleDecoder) exprs(depth int) []sigma.Expr {
	n := d.count()
	if n < 0 {
		return nil
	}
	xs := make([]sigma.Expr, n)
	for i := range xs {
		if d.err != nil {
			break
		}
		xs[i] = d.expr(depth)
	}
	return xs
}
