package sqlengine

import (
	"encoding/binary"
	"fmt"
	"regexp"
	"strings"
	"unsafe"

	"modernc.org/libc"
	"modernc.org/libc/sys/types"
	sqlite3 "modernc.org/sqlite/lib"
)

// SyntaxError is SQLite's message for SQL it could not parse, with the place
// it names located in the query (1-based line and column, in bytes).
type SyntaxError struct {
	Message string // SQLite's message, e.g. `near "SELEC": syntax error`
	Near    string // the token SQLite names, if any
	Offset  int    // byte offset into the query, -1 when unknown
	Line    int
	Column  int
}

func (e *SyntaxError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s at line %d, column %d", e.Message, e.Line, e.Column)
	}
	return e.Message
}

var (
	nearToken     = regexp.MustCompile(`near "((?:[^"]|"")*)": syntax error`)
	sqliteWrapper = regexp.MustCompile(`^SQL logic error: (.*) \(\d+\)$`)
)

// syntaxError recognizes a parse error in msg and locates it in query.
func syntaxError(query, msg string) *SyntaxError {
	inner := msg
	if m := sqliteWrapper.FindStringSubmatch(msg); m != nil {
		inner = m[1]
	}
	switch {
	case strings.Contains(inner, "incomplete input"):
		return locate(&SyntaxError{Message: inner, Offset: len(strings.TrimRight(query, " \t\r\n;"))}, query)
	case strings.Contains(inner, "unrecognized token"), strings.Contains(inner, "syntax error"):
	default:
		return nil
	}
	se := &SyntaxError{Message: inner, Offset: -1}
	tok := ""
	if m := nearToken.FindStringSubmatch(inner); m != nil {
		tok = strings.ReplaceAll(m[1], `""`, `"`)
	} else if i := strings.Index(inner, `unrecognized token: "`); i >= 0 {
		tok = strings.TrimSuffix(inner[i+len(`unrecognized token: "`):], `"`)
	}
	se.Near = tok
	if off, ok := errorOffset(query); ok {
		se.Offset = off
	} else if tok != "" {
		se.Offset = tokenOffset(query, tok)
	}
	return locate(se, query)
}

// errorOffset asks SQLite where the parse of query fails
// (sqlite3_error_offset), preparing it on a scratch connection: a syntax error
// is found before any table is resolved, so the scratch connection needs none.
// Each statement of a multi-statement query is prepared in turn.
func errorOffset(query string) (int, bool) {
	tls := libc.NewTLS()
	defer tls.Close()
	name, err := libc.CString(":memory:")
	if err != nil {
		return 0, false
	}
	defer libc.Xfree(tls, name)
	pp := libc.Xcalloc(tls, 2, types.Size_t(ptrSize)) // [0]: sqlite3*, [1]: sqlite3_stmt* or tail
	if pp == 0 {
		return 0, false
	}
	defer libc.Xfree(tls, pp)
	if sqlite3.Xsqlite3_open_v2(tls, name, pp, sqlite3.SQLITE_OPEN_READWRITE|sqlite3.SQLITE_OPEN_MEMORY, 0) != sqlite3.SQLITE_OK {
		return 0, false
	}
	db := readPtr(pp)
	defer sqlite3.Xsqlite3_close_v2(tls, db)
	zsql, err := libc.CString(query)
	if err != nil {
		return 0, false
	}
	defer libc.Xfree(tls, zsql)
	pstmt, ptail := pp, pp+ptrSize
	cur := zsql
	end := zsql + uintptr(len(query))
	for cur < end {
		rc := sqlite3.Xsqlite3_prepare_v2(tls, db, cur, -1, pstmt, ptail)
		if stmt := readPtr(pstmt); stmt != 0 {
			sqlite3.Xsqlite3_finalize(tls, stmt)
		}
		if rc != sqlite3.SQLITE_OK {
			// Only a parse error is this connection's to place; an unknown
			// table or column here says nothing about the real one.
			msg := libc.GoString(sqlite3.Xsqlite3_errmsg(tls, db))
			if !strings.Contains(msg, "syntax error") && !strings.Contains(msg, "unrecognized token") && !strings.Contains(msg, "incomplete input") {
				return 0, false
			}
			off := int(sqlite3.Xsqlite3_error_offset(tls, db))
			if off < 0 {
				return 0, false
			}
			return int(cur-zsql) + off, true
		}
		tail := readPtr(ptail)
		if tail <= cur {
			break
		}
		cur = tail
	}
	return 0, false
}

// tokenOffset finds tok in query outside comments, preferring a match that
// stands as a whole word.
func tokenOffset(query, tok string) int {
	first := -1
	for from := 0; from < len(query); {
		i := strings.Index(query[from:], tok)
		if i < 0 {
			break
		}
		i += from
		if first < 0 {
			first = i
		}
		before := i == 0 || !isWordByte(query[i-1])
		after := i+len(tok) >= len(query) || !isWordByte(query[i+len(tok)]) || !isWordByte(tok[len(tok)-1])
		if before && after {
			return i
		}
		from = i + 1
	}
	return first
}

func isWordByte(b byte) bool {
	return b == '_' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
}

func locate(se *SyntaxError, query string) *SyntaxError {
	if se.Offset < 0 || se.Offset > len(query) {
		return se
	}
	before := query[:se.Offset]
	se.Line = strings.Count(before, "\n") + 1
	se.Column = se.Offset - (strings.LastIndexByte(before, '\n') + 1) + 1
	return se
}

// readPtr reads a pointer-sized out-parameter SQLite wrote into C memory.
func readPtr(p uintptr) uintptr {
	if ptrSize == 4 {
		return uintptr(binary.NativeEndian.Uint32(libc.GoBytes(p, 4)))
	}
	return uintptr(binary.NativeEndian.Uint64(libc.GoBytes(p, 8)))
}

const ptrSize = unsafe.Sizeof(uintptr(0))
