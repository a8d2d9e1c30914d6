package server

import (
	"strings"

	"github.com/quarry-sec/quarry/fleet/store"
)

// ParseTableDefinition reads a table's name and columns from the CREATE
// statement SQLite keeps for it in sqlite_master, as osquery's tables
// show there:
//
//	CREATE VIRTUAL TABLE temp.processes USING processes(`pid` BIGINT, `name` TEXT, `pid_with_namespace` INTEGER HIDDEN)
//
// It is tolerant: names may be bare or quoted (`…`, "…", […]) and
// schema-qualified (temp.), types may be several words, keywords after the
// type are skipped (HIDDEN marks the column hidden), and table constraints
// (PRIMARY KEY (…), …) and entries it cannot read are left out. A virtual
// table's module argument without a type (Quarry's agent declares its
// tables as USING quarry(name)) is not a column. ok is false when def is
// not a CREATE TABLE statement with a column list; a table without any
// readable column has ok true and no columns.
func ParseTableDefinition(def string) (name string, cols []store.TableColumn, ok bool) {
	open := indexUnquoted(def, '(')
	if open < 0 {
		return "", nil, false
	}
	head := tokens(def[:open])
	virtual := false
	i := 0
	if i < len(head) && strings.EqualFold(head[i], "CREATE") {
		i++
	} else {
		return "", nil, false
	}
	for i < len(head) && (strings.EqualFold(head[i], "TEMP") || strings.EqualFold(head[i], "TEMPORARY") ||
		strings.EqualFold(head[i], "VIRTUAL")) {
		virtual = virtual || strings.EqualFold(head[i], "VIRTUAL")
		i++
	}
	if i >= len(head) || !strings.EqualFold(head[i], "TABLE") {
		return "", nil, false
	}
	i++
	if i+2 < len(head) && strings.EqualFold(head[i], "IF") && strings.EqualFold(head[i+1], "NOT") &&
		strings.EqualFold(head[i+2], "EXISTS") {
		i += 3
	}
	if i >= len(head) {
		return "", nil, false
	}
	// The name, maybe schema-qualified: the tokenizer keeps "." apart.
	name = unquote(head[i])
	for i+2 < len(head) && head[i+1] == "." {
		name = unquote(head[i+2])
		i += 2
	}
	if name == "" {
		return "", nil, false
	}
	body, closed := enclosed(def[open:])
	if !closed {
		return "", nil, false
	}
	seen := map[string]bool{}
	for _, part := range splitUnquoted(body, ',') {
		c, isCol := parseColumn(part, virtual)
		if !isCol || seen[c.Name] {
			continue
		}
		seen[c.Name] = true
		cols = append(cols, c)
	}
	return name, cols, true
}

// tableConstraints start a table constraint instead of a column.
var tableConstraints = map[string]bool{"PRIMARY": true, "UNIQUE": true, "CHECK": true, "FOREIGN": true, "CONSTRAINT": true}

// columnKeywords end a column's type: its constraints follow.
var columnKeywords = map[string]bool{"HIDDEN": true, "PRIMARY": true, "NOT": true, "NULL": true, "DEFAULT": true,
	"UNIQUE": true, "CHECK": true, "COLLATE": true, "REFERENCES": true, "CONSTRAINT": true, "GENERATED": true, "AS": true}

// parseColumn reads one column definition; typeless ones are columns only
// outside virtual tables.
func parseColumn(def string, virtual bool) (store.TableColumn, bool) {
	toks := tokens(def)
	if len(toks) == 0 || isBare(toks[0]) && tableConstraints[strings.ToUpper(toks[0])] {
		return store.TableColumn{}, false
	}
	c := store.TableColumn{Name: unquote(toks[0])}
	if c.Name == "" {
		return store.TableColumn{}, false
	}
	var typ []string
	inType := true
	for _, t := range toks[1:] {
		up := strings.ToUpper(t)
		if isBare(t) && columnKeywords[up] {
			inType = false
		}
		if up == "HIDDEN" {
			c.Hidden = true
		}
		if !inType {
			continue
		}
		switch {
		case strings.HasPrefix(t, "(") && len(typ) > 0: // VARCHAR(255)
			typ[len(typ)-1] += t
		case isBare(t) && t != ".":
			typ = append(typ, up)
		default:
			inType = false
		}
	}
	c.Type = strings.Join(typ, " ")
	if c.Type == "" && virtual {
		return store.TableColumn{}, false
	}
	return c, true
}

// tokens splits s into quoted names (kept with their quotes), parenthesized
// groups, "." and bare words.
func tokens(s string) []string {
	var out []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '.' || c == ',' || c == ';':
			out = append(out, s[i:i+1])
			i++
		case c == '(':
			_, n := enclosedLen(s[i:])
			out = append(out, s[i:i+n])
			i += n
		case closingQuote(c) != 0:
			n := quotedLen(s[i:])
			out = append(out, s[i:i+n])
			i += n
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\n\r.,;()`\"'[", rune(s[j])) {
				j++
			}
			if j == i { // a stray ")": a word of its own
				j++
			}
			out = append(out, s[i:j])
			i = j
		}
	}
	return out
}

// isBare reports whether a token is a bare word.
func isBare(t string) bool {
	return t != "" && closingQuote(t[0]) == 0 && t[0] != '(' && t[0] != ')'
}

// closingQuote is the quote closing one opened by c, or 0.
func closingQuote(c byte) byte {
	switch c {
	case '`', '"', '\'':
		return c
	case '[':
		return ']'
	}
	return 0
}

// quotedLen is the length of the quoted token s starts with, up to its
// closing quote (a doubled quote inside escapes it) or the end of s.
func quotedLen(s string) int {
	q := closingQuote(s[0])
	for i := 1; i < len(s); i++ {
		if s[i] != q {
			continue
		}
		if q != ']' && i+1 < len(s) && s[i+1] == q {
			i++
			continue
		}
		return i + 1
	}
	return len(s)
}

// unquote returns a name without its quotes, doubled quotes undone.
func unquote(t string) string {
	if t == "" {
		return ""
	}
	q := closingQuote(t[0])
	if q == 0 {
		if t[0] == '(' || t == "." || t == "," || t == ";" {
			return ""
		}
		return t
	}
	inner := t[1:]
	if strings.HasSuffix(inner, string(q)) {
		inner = inner[:len(inner)-1]
	}
	if q != ']' {
		inner = strings.ReplaceAll(inner, string([]byte{q, q}), string(q))
	}
	return inner
}

// enclosedLen measures the parenthesized group s starts with: whether it
// closes, and its length with both parentheses (or to the end of s).
func enclosedLen(s string) (closed bool, n int) {
	depth := 0
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case closingQuote(c) != 0:
			i += quotedLen(s[i:])
			continue
		case c == '(':
			depth++
		case c == ')':
			depth--
			if depth == 0 {
				return true, i + 1
			}
		}
		i++
	}
	return false, len(s)
}

// enclosed returns what is inside the parenthesized group s starts with.
func enclosed(s string) (string, bool) {
	closed, n := enclosedLen(s)
	if !closed {
		return "", false
	}
	return s[1 : n-1], true
}

// indexUnquoted is the index of the first c in s outside quotes, or -1.
func indexUnquoted(s string, c byte) int {
	for i := 0; i < len(s); {
		if s[i] == c {
			return i
		}
		if closingQuote(s[i]) != 0 {
			i += quotedLen(s[i:])
			continue
		}
		i++
	}
	return -1
}

// splitUnquoted splits s at the sep outside quotes and parentheses.
func splitUnquoted(s string, sep byte) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case closingQuote(c) != 0:
			i += quotedLen(s[i:])
			continue
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == sep && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
		i++
	}
	return append(out, s[start:])
}
