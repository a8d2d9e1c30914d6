package server

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"unicode/utf8"
)

// NULEscape is what a NUL byte in text a host reports is stored as:
// PostgreSQL refuses NUL in text, and one NUL must not cost a host its
// whole batch (the host would resend it forever). SQLite stores the same.
const NULEscape = `\x00`

// validText reports whether s can be stored as text as it is: valid UTF-8
// without NUL bytes.
func validText(s string) bool {
	return strings.IndexByte(s, 0) < 0 && utf8.ValidString(s)
}

// cleanText returns s with each NUL byte replaced by NULEscape and each
// invalid UTF-8 sequence by U+FFFD (PostgreSQL refuses both in text).
func cleanText(s string) string {
	if validText(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", NULEscape)
}

// cleanJSON returns raw JSON text fit for a text column: invalid UTF-8
// replaced by U+FFFD; a NUL byte, which valid JSON cannot hold outside an
// escape, is dropped. The \u0000 escape itself is six characters of text
// and stays.
func cleanJSON(raw json.RawMessage) json.RawMessage {
	if validText(string(raw)) {
		return raw
	}
	return json.RawMessage(strings.ReplaceAll(strings.ToValidUTF8(string(raw), "\uFFFD"), "\x00", ""))
}

var rawMessageType = reflect.TypeFor[json.RawMessage]()

// cleanStrings cleans, in place, every string (cleanText) and JSON text
// (cleanJSON) reachable from v, a pointer to what a host sent once
// decoded (a store.LogBatch, store.Answer, store.HostSchema or store.Host).
func cleanStrings(v any) {
	cleanValue(reflect.ValueOf(v))
}

func cleanValue(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			cleanValue(v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Field(i); f.CanSet() {
				cleanValue(f)
			}
		}
	case reflect.Slice:
		if v.Type() == rawMessageType {
			if raw := v.Bytes(); !validText(string(raw)) && v.CanSet() {
				v.SetBytes(cleanJSON(raw))
			}
			return
		}
		for i := range v.Len() {
			cleanValue(v.Index(i))
		}
	case reflect.Array:
		for i := range v.Len() {
			cleanValue(v.Index(i))
		}
	case reflect.Map:
		if v.IsNil() {
			return
		}
		for _, k := range v.MapKeys() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(v.MapIndex(k))
			cleanValue(e)
			nk := k
			if k.Kind() == reflect.String && !validText(k.String()) {
				nk = reflect.New(k.Type()).Elem()
				nk.SetString(cleanText(k.String()))
				v.SetMapIndex(k, reflect.Value{})
			}
			v.SetMapIndex(nk, e)
		}
	case reflect.String:
		if s := v.String(); !validText(s) && v.CanSet() {
			v.SetString(cleanText(s))
		}
	}
}

// checkRequestText refuses (400) a request whose path or query holds a
// NUL byte or invalid UTF-8: no stored name can match it, and PostgreSQL
// would refuse it as a parameter.
func checkRequestText(r *http.Request) error {
	if !validText(r.URL.Path) {
		return errorf(http.StatusBadRequest, "the request path holds a NUL byte or invalid UTF-8")
	}
	for k, vs := range r.URL.Query() {
		for _, v := range append([]string{k}, vs...) {
			if !validText(v) {
				return errorf(http.StatusBadRequest, "query parameter %q holds a NUL byte or invalid UTF-8", cleanText(k))
			}
		}
	}
	return nil
}
