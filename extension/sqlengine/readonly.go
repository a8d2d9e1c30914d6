package sqlengine

import (
	"strings"

	msqlite "modernc.org/sqlite"
)

// readOnlyPragmas are the pragmas a query may use: they only report.
var readOnlyPragmas = map[string]bool{
	"table_info": true, "table_xinfo": true, "table_list": true,
	"function_list": true, "module_list": true, "pragma_list": true,
	"compile_options": true, "database_list": true, "collation_list": true,
	"index_list": true, "index_info": true, "index_xinfo": true,
	"foreign_key_list": true,
}

// readOnly is the authorizer of every engine connection: reading, functions
// and common table expressions pass; anything that writes, attaches files,
// changes the schema or sets a pragma is denied.
func readOnly(action msqlite.AuthorizerActionCode, arg1, arg2, _, _ string) msqlite.AuthorizerReturnCode {
	switch action {
	case msqlite.AuthSelect, msqlite.AuthRead, msqlite.AuthFunction, msqlite.AuthRecursive:
		return msqlite.AuthorizerOK
	case msqlite.AuthPragma:
		if readOnlyPragmas[strings.ToLower(arg1)] {
			return msqlite.AuthorizerOK
		}
	}
	return msqlite.AuthorizerDeny
}

// writeKeywords are statement kinds refused before SQLite sees them, for a
// clear message; the authorizer is what enforces read-only.
var writeKeywords = map[string]bool{
	"INSERT": true, "UPDATE": true, "DELETE": true, "REPLACE": true,
	"CREATE": true, "DROP": true, "ALTER": true, "ATTACH": true,
	"DETACH": true, "VACUUM": true, "REINDEX": true, "ANALYZE": true,
	"BEGIN": true, "COMMIT": true, "END": true, "ROLLBACK": true,
	"SAVEPOINT": true, "RELEASE": true,
}

// writeKeyword returns the statement's first keyword when it names a write.
func writeKeyword(query string) string {
	s := skipSpaceAndComments(query)
	end := 0
	for end < len(s) && (s[end] >= 'a' && s[end] <= 'z' || s[end] >= 'A' && s[end] <= 'Z') {
		end++
	}
	kw := strings.ToUpper(s[:end])
	if writeKeywords[kw] {
		return kw
	}
	return ""
}

func skipSpaceAndComments(s string) string {
	for {
		s = strings.TrimLeft(s, " \t\r\n;")
		switch {
		case strings.HasPrefix(s, "--"):
			i := strings.IndexByte(s, '\n')
			if i < 0 {
				return ""
			}
			s = s[i+1:]
		case strings.HasPrefix(s, "/*"):
			i := strings.Index(s[2:], "*/")
			if i < 0 {
				return ""
			}
			s = s[i+4:]
		default:
			return s
		}
	}
}
