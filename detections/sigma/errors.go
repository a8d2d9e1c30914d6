package sigma

import "fmt"

// Error is a problem with one rule (or one YAML document), located by file,
// line and field.
type Error struct {
	File   string // the rule file, as given to Parse
	Line   int    // 1-based line, 0 when unknown
	Field  string // the YAML field concerned ("detection.selection", "tags"), may be empty
	RuleID string // the rule's id when it was read before the problem
	Title  string // the rule's title when known
	Err    error
}

// Error formats the problem as "file:line: field: reason".
func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %v", loc, e.Field, e.Err)
	}
	return fmt.Sprintf("%s: %v", loc, e.Err)
}

// Unwrap returns the underlying reason.
func (e *Error) Unwrap() error { return e.Err }

// ErrNotSupported marks documents Quarry skips on purpose (filter
// documents): they are reported as skipped, not as failures.
var ErrNotSupported = fmt.Errorf("not supported yet")
