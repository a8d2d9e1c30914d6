package importers

import (
	"unicode/utf8"

	"github.com/quarry-sec/quarry/telemetry"
)

// The bounds on one imported value. A value over its bound is cut (at a
// UTF-8 boundary) and the event is marked Truncated, so one pathological
// record costs no more than a live one.
const (
	// MaxCommandLine bounds command lines (Cmdline, ParentCmdline, the
	// CommandLine fields) and the joined argument list, as the live
	// collectors bound argv.
	MaxCommandLine = 32 << 10
	// MaxScriptText bounds script and payload text (PowerShell's
	// ScriptBlockText, Payload, ContextInfo…), which is long by nature.
	MaxScriptText = 32 << 10
	// MaxValue bounds every other value: paths, names, hashes, fields.
	MaxValue = 4 << 10
	// MaxRecord is the hard bound on one record (line or object) before it
	// is decoded. Within it, a JSON string is kept only up to
	// maxJSONString bytes, so a record of a few long values still reads; a
	// record over MaxRecord anyway (many values) is a counted record error
	// naming its line, and the rest of the file is read.
	MaxRecord = 8 << 20
)

// maxJSONString is how much of one JSON string literal a reader keeps (in
// source bytes, escapes included) before skipping to its end: more than
// any value bound, so that what is cut here is cut again, and flagged, by
// bound.
const maxJSONString = 2 * MaxCommandLine

// longFields are the Fields holding command lines or script text, bounded at
// MaxCommandLine or MaxScriptText rather than MaxValue.
// longFields are the fields bound above MaxValue (none is bound below it:
// boundFields relies on that).
var longFields = map[string]int{
	"CommandLine":        MaxCommandLine,
	"ParentCommandLine":  MaxCommandLine,
	"ProcessCommandLine": MaxCommandLine,
	"cmdline":            MaxCommandLine,
	"proctitle":          MaxCommandLine,
	"ScriptBlockText":    MaxScriptText,
	"Payload":            MaxScriptText,
	"ContextInfo":        MaxScriptText,
	"HostApplication":    MaxScriptText,
	"Data":               MaxScriptText,
	"param1":             MaxScriptText,
	"param2":             MaxScriptText,
	"param3":             MaxScriptText,
}

// cut returns s cut to at most n bytes at a UTF-8 boundary, and whether it
// was cut.
func cut(s string, n int) (string, bool) {
	if len(s) <= n {
		return s, false
	}
	i := n
	for i > 0 && i > n-utf8.UTFMax && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i], true
}

// bound cuts e's values to their bounds, marking e Truncated when one was
// cut. Values already within bounds (nearly always) cost a length check.
func bound(e *telemetry.Event) {
	t := e.Truncated
	var c bool
	for _, p := range [...]*string{&e.Cmdline, &e.ParentCmdline} {
		*p, c = cut(*p, MaxCommandLine)
		t = t || c
	}
	for _, p := range [...]*string{&e.Path, &e.ParentPath, &e.Cwd, &e.Comm, &e.Username, &e.LogonID,
		&e.ProcessGUID, &e.ParentGUID, &e.IntegrityLevel, &e.OriginalFileName, &e.Hashes,
		&e.Host, &e.Channel, &e.Category} {
		*p, c = cut(*p, MaxValue)
		t = t || c
	}
	total := 0
	for i, a := range e.Args {
		if total+len(a) > MaxCommandLine {
			e.Args[i], _ = cut(a, max(MaxCommandLine-total, 0))
			if e.Args[i] == "" {
				e.Args = e.Args[:i]
			} else {
				e.Args = e.Args[:i+1]
			}
			t = true
			break
		}
		total += len(a) + 1
	}
	if boundFields(&e.Fields) {
		t = true
	}
	e.Truncated = t
}

// fieldBound is the bound on a field's value.
func fieldBound(name string) int {
	if n, ok := longFields[name]; ok {
		return n
	}
	return MaxValue
}

// boundFields cuts over-long field values (and names) in place and reports
// whether it cut one.
func boundFields(fs *telemetry.Fields) bool {
	var over []telemetry.Field
	for _, f := range fs.List() {
		// Every bound is MaxValue or more: a value within it needs no
		// lookup of its field's own.
		if (len(f.Value) > MaxValue && len(f.Value) > fieldBound(f.Name)) || len(f.Name) > MaxValue {
			over = append(over, f)
		}
	}
	for _, f := range over {
		v, _ := cut(f.Value, fieldBound(f.Name))
		if name, c := cut(f.Name, MaxValue); c {
			fs.Delete(f.Name)
			fs.Set(name, v)
			continue
		}
		fs.Set(f.Name, v)
	}
	return len(over) > 0
}
