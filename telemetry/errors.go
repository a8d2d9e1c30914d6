package telemetry

import "fmt"

// RecordError is a malformed record in a recording: where it is and why it
// was skipped. Readers return it and go on with the next record.
type RecordError struct {
	File   string
	Line   int   // 1-based line, for line-oriented formats; 0 otherwise
	Record int64 // 1-based record number (EVTX record, audit event), 0 if unknown
	Reason string
	Err    error
}

func (e *RecordError) Error() string {
	where := e.File
	switch {
	case e.Line > 0:
		where = fmt.Sprintf("%s:%d", e.File, e.Line)
	case e.Record > 0:
		where = fmt.Sprintf("%s: record %d", e.File, e.Record)
	}
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", where, e.Reason, e.Err)
	}
	return fmt.Sprintf("%s: %s", where, e.Reason)
}

func (e *RecordError) Unwrap() error { return e.Err }
