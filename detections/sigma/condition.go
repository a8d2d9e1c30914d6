package sigma

import (
	"fmt"
	"path"
	"strconv"
	"strings"
)

// Expr is a parsed condition.
type Expr interface{ exprString() string }

// Ident names one search.
type Ident struct{ Name string }

// Not negates X.
type Not struct{ X Expr }

// And holds when all of X hold.
type And struct{ X []Expr }

// Or holds when any of X holds.
type Or struct{ X []Expr }

// Of is "N of pattern", "all of pattern", "1 of them" and "all of them".
// Names are the searches the pattern selects (all searches for "them").
type Of struct {
	All     bool // all of
	Count   int  // N of (1 for "1 of"); unused when All
	Pattern string
	Names   []string
}

func (e *Ident) exprString() string { return e.Name }
func (e *Not) exprString() string   { return "not " + e.X.exprString() }
func (e *And) exprString() string   { return joinExpr(e.X, " and ") }
func (e *Or) exprString() string    { return joinExpr(e.X, " or ") }
func (e *Of) exprString() string {
	q := strconv.Itoa(e.Count)
	if e.All {
		q = "all"
	}
	return q + " of " + e.Pattern
}

// String renders an expression with full parentheses.
func String(e Expr) string { return e.exprString() }

func joinExpr(xs []Expr, sep string) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = x.exprString()
	}
	return "(" + strings.Join(parts, sep) + ")"
}

// ParseCondition parses a Sigma condition against the names of a rule's
// searches. Unknown names and patterns that select nothing are errors;
// aggregations ("| count() …") are not supported.
func ParseCondition(text string, names []string) (Expr, error) {
	toks, err := lexCondition(text)
	if err != nil {
		return nil, err
	}
	p := &condParser{toks: toks, names: names}
	e, err := p.or(0)
	if err != nil {
		return nil, err
	}
	if p.pos < len(p.toks) {
		return nil, fmt.Errorf("condition %q: unexpected %q", text, p.toks[p.pos])
	}
	return e, nil
}

func lexCondition(s string) ([]string, error) {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(' || c == ')':
			toks = append(toks, string(c))
			i++
		case c == '|':
			return nil, fmt.Errorf("condition %q: aggregation expressions are %w (use a correlation rule)", s, ErrNotSupported)
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\n\r()|", rune(s[j])) {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	if len(toks) == 0 {
		return nil, fmt.Errorf("empty condition")
	}
	return toks, nil
}

type condParser struct {
	toks  []string
	pos   int
	names []string
}

const maxCondDepth = 100

func (p *condParser) peek() string {
	if p.pos < len(p.toks) {
		return strings.ToLower(p.toks[p.pos])
	}
	return ""
}

func (p *condParser) or(depth int) (Expr, error) {
	if depth > maxCondDepth {
		return nil, fmt.Errorf("condition nested too deeply")
	}
	l, err := p.and(depth)
	if err != nil {
		return nil, err
	}
	xs := []Expr{l}
	for p.peek() == "or" {
		p.pos++
		r, err := p.and(depth)
		if err != nil {
			return nil, err
		}
		xs = append(xs, r)
	}
	if len(xs) == 1 {
		return l, nil
	}
	return &Or{X: xs}, nil
}

func (p *condParser) and(depth int) (Expr, error) {
	l, err := p.not(depth)
	if err != nil {
		return nil, err
	}
	xs := []Expr{l}
	for p.peek() == "and" {
		p.pos++
		r, err := p.not(depth)
		if err != nil {
			return nil, err
		}
		xs = append(xs, r)
	}
	if len(xs) == 1 {
		return l, nil
	}
	return &And{X: xs}, nil
}

func (p *condParser) not(depth int) (Expr, error) {
	if p.peek() == "not" {
		p.pos++
		x, err := p.not(depth + 1)
		if err != nil {
			return nil, err
		}
		return &Not{X: x}, nil
	}
	return p.primary(depth)
}

func (p *condParser) primary(depth int) (Expr, error) {
	t := p.peek()
	switch t {
	case "":
		return nil, fmt.Errorf("condition ends too early")
	case "(":
		p.pos++
		e, err := p.or(depth + 1)
		if err != nil {
			return nil, err
		}
		if p.peek() != ")" {
			return nil, fmt.Errorf("missing )")
		}
		p.pos++
		return e, nil
	case ")", "and", "or", "of", "them":
		return nil, fmt.Errorf("unexpected %q", p.toks[p.pos])
	}
	if p.pos+1 < len(p.toks) && strings.ToLower(p.toks[p.pos+1]) == "of" {
		of := &Of{}
		if t == "all" {
			of.All = true
		} else {
			n, err := strconv.Atoi(t)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("%q of: want all or a positive number", p.toks[p.pos])
			}
			of.Count = n
		}
		p.pos += 2
		if p.pos >= len(p.toks) {
			return nil, fmt.Errorf("of: missing pattern")
		}
		pat := p.toks[p.pos]
		p.pos++
		of.Pattern = pat
		if strings.ToLower(pat) == "them" {
			of.Pattern = "them"
			for _, n := range p.names {
				if !strings.HasPrefix(n, "_") {
					of.Names = append(of.Names, n)
				}
			}
		} else {
			if _, err := path.Match(pat, ""); err != nil {
				return nil, fmt.Errorf("of %q: bad pattern", pat)
			}
			for _, n := range p.names {
				if ok, _ := path.Match(pat, n); ok {
					of.Names = append(of.Names, n)
				}
			}
		}
		if len(of.Names) == 0 {
			return nil, fmt.Errorf("%q selects no search", pat)
		}
		return of, nil
	}
	name := p.toks[p.pos]
	p.pos++
	for _, n := range p.names {
		if n == name {
			return &Ident{Name: name}, nil
		}
	}
	return nil, fmt.Errorf("unknown search %q", name)
}
