package importers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// The sandbox report reader walks a CAPE or Cuckoo report.json with
// encoding/json's token stream, decoding one small value at a time, so a
// report of hundreds of megabytes (millions of API calls) is read in
// bounded memory. Every string literal is cut to maxJSONString on the way
// in (cappedReader), as the other JSON importers cut them.

// cappedReader passes a JSON text through, keeping at most maxJSONString
// source bytes of each string literal (stringCapper).
type cappedReader struct {
	r io.Reader
	c stringCapper
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n, err := c.r.Read(p)
		k := 0
		for _, b := range p[:n] {
			if c.c.keep(b) {
				p[k] = b
				k++
			}
		}
		if k > 0 || err != nil {
			return k, err
		}
	}
}

// jsonWalk reads a JSON text value by value, knowing where it is (the
// path of keys and indexes) for error messages.
type jsonWalk struct {
	file string
	dec  *json.Decoder
	path []string
}

func newJSONWalk(file string, r io.Reader) *jsonWalk {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	return &jsonWalk{file: file, dec: dec}
}

// where is the current path, "behavior.processes[3].calls[7]".
func (w *jsonWalk) where() string {
	var b strings.Builder
	for _, p := range w.path {
		if strings.HasPrefix(p, "[") || b.Len() == 0 {
			b.WriteString(p)
		} else {
			b.WriteByte('.')
			b.WriteString(p)
		}
	}
	if b.Len() == 0 {
		return "top level"
	}
	return b.String()
}

// errorf is a malformed report: the file, the byte offset and the field.
func (w *jsonWalk) errorf(format string, args ...any) error {
	return fmt.Errorf("%soffset %d: %s: %s", w.prefix(), w.dec.InputOffset(), w.where(), fmt.Sprintf(format, args...))
}

// prefix is "file: ", or "" when the caller names the file.
func (w *jsonWalk) prefix() string {
	if w.file == "" {
		return ""
	}
	return w.file + ": "
}

// wrap turns a decoding error into one naming the file, offset and field.
func (w *jsonWalk) wrap(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%soffset %d: %s: the report ends early (truncated JSON)", w.prefix(), w.dec.InputOffset(), w.where())
	case errors.As(err, &se):
		return fmt.Errorf("%soffset %d: %s: malformed JSON: %v", w.prefix(), se.Offset, w.where(), err)
	case errors.As(err, &te):
		field := w.where()
		if te.Field != "" {
			field += "." + te.Field
		}
		return fmt.Errorf("%soffset %d: %s: a JSON %s where the report format has a %s", w.prefix(), te.Offset, field, te.Value, jsonKind(te.Type.Kind().String()))
	}
	return fmt.Errorf("%soffset %d: %s: %w", w.prefix(), w.dec.InputOffset(), w.where(), err)
}

func jsonKind(goKind string) string {
	switch goKind {
	case "slice", "array":
		return "list"
	case "struct", "map":
		return "object"
	}
	return goKind
}

func (w *jsonWalk) token() (json.Token, error) {
	t, err := w.dec.Token()
	if err != nil {
		return nil, w.wrap(err)
	}
	return t, nil
}

// peekDelim reads the next token and says whether it opens want ('{' or
// '['); any other value is consumed and reported as false.
func (w *jsonWalk) open(want json.Delim) (bool, error) {
	t, err := w.token()
	if err != nil {
		return false, err
	}
	if d, ok := t.(json.Delim); ok {
		if d == want {
			return true, nil
		}
		// the other container: skip it whole
		if err := w.skipRest(); err != nil {
			return false, err
		}
	}
	return false, nil
}

// skipRest skips the rest of a container whose opening token was read.
func (w *jsonWalk) skipRest() error {
	for depth := 1; depth > 0; {
		t, err := w.token()
		if err != nil {
			return err
		}
		if d, ok := t.(json.Delim); ok {
			if d == '{' || d == '[' {
				depth++
			} else {
				depth--
			}
		}
	}
	return nil
}

// skip skips the next value.
func (w *jsonWalk) skip() error {
	t, err := w.token()
	if err != nil {
		return err
	}
	if d, ok := t.(json.Delim); ok && (d == '{' || d == '[') {
		return w.skipRest()
	}
	return nil
}

// object walks an object: fn is called with each key and must consume its
// value. A value that is not an object is an error naming the field.
func (w *jsonWalk) object(fn func(key string) error) error {
	ok, err := w.open('{')
	if err != nil {
		return err
	}
	if !ok {
		return w.errorf("want an object")
	}
	for w.dec.More() {
		t, err := w.token()
		if err != nil {
			return err
		}
		key, _ := t.(string)
		w.path = append(w.path, key)
		err = fn(key)
		w.path = w.path[:len(w.path)-1]
		if err != nil {
			return err
		}
	}
	_, err = w.token() // '}'
	return err
}

// array walks a list: fn is called with each index and must consume the
// element. null is an empty list; any other value is an error.
func (w *jsonWalk) array(fn func(i int) error) error {
	t, err := w.token()
	if err != nil {
		return err
	}
	if t == nil {
		return nil
	}
	if d, ok := t.(json.Delim); !ok || d != '[' {
		if ok && d == '{' {
			if err := w.skipRest(); err != nil {
				return err
			}
		}
		return w.errorf("want a list")
	}
	for i := 0; w.dec.More(); i++ {
		w.path = append(w.path, "["+strconv.Itoa(i)+"]")
		err := fn(i)
		w.path = w.path[:len(w.path)-1]
		if err != nil {
			return err
		}
	}
	_, err = w.token() // ']'
	return err
}

// decode decodes the next value into v.
func (w *jsonWalk) decode(v any) error {
	if err := w.dec.Decode(v); err != nil {
		return w.wrap(err)
	}
	return nil
}

// jval is any JSON scalar read as text: a string as it is, a number as
// written, a boolean as true/false, null as "". An object or a list is kept
// as its compact JSON text. Sandbox reports type their values loosely
// (pids as numbers or strings, statuses as booleans or numbers), so every
// scalar the reader uses is a jval.
type jval string

// UnmarshalJSON reads any JSON value.
func (v *jval) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		*v = ""
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*v = jval(s)
	case b[0] == '{' || b[0] == '[':
		var c bytes.Buffer
		if err := json.Compact(&c, b); err != nil {
			return err
		}
		*v = jval(c.String())
	default:
		*v = jval(b)
	}
	return nil
}

func (v jval) String() string { return string(v) }

// int returns the value as an integer (decimal or 0x hex), ok false when it
// is not one.
func (v jval) int() (int64, bool) {
	s := strings.TrimSpace(string(v))
	if s == "" {
		return 0, false
	}
	if len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		n, err := strconv.ParseUint(s[2:], 16, 64)
		return int64(n), err == nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, true
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f >= -1<<62 && f <= 1<<62 {
		return int64(f), true
	}
	return 0, false
}

// float returns the value as a number.
func (v jval) float() (float64, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(string(v)), 64)
	return f, err == nil
}

// list returns the value as a list of strings: a JSON list of scalars, or
// one non-empty scalar.
func (v jval) list() []string {
	s := string(v)
	if s == "" {
		return nil
	}
	if !strings.HasPrefix(s, "[") {
		return []string{s}
	}
	var raw []jval
	if json.Unmarshal([]byte(s), &raw) != nil {
		return nil
	}
	out := make([]string, 0, len(raw))
	for _, r := range raw {
		if r != "" {
			out = append(out, string(r))
		}
	}
	return out
}

// reportTime reads a sandbox report's time: seconds since the epoch (a
// number, as Cuckoo 2 writes datetimes) or text, "2006-01-02 15:04:05"
// with an optional ",000" or ".000000" fraction (CAPE), or RFC 3339. Times
// without a zone are taken as UTC. ok is false when v is empty or none of
// those.
func reportTime(v jval) (time.Time, bool) {
	s := strings.TrimSpace(string(v))
	if s == "" {
		return time.Time{}, false
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f <= 0 || f > 1e11 {
			return time.Time{}, false
		}
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)).UTC().Round(time.Microsecond), true
	}
	s = strings.Replace(s, ",", ".", 1)
	for _, layout := range []string{"2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999", time.RFC3339Nano} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}
