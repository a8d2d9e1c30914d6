package eventstore

import (
	"encoding/json"
	"errors"

	"github.com/quarry-sec/quarry/telemetry"
)

// errNotFlat is returned by decodeFlat for JSON it does not read itself.
var errNotFlat = errors.New("fields: not a flat object of strings")

// decodeFields reads the fields column (a JSON object of string values, as
// telemetry.Fields marshals it) into f. The common case, which the store
// itself wrote, is read by a small scanner that copies strings without
// escapes as they are; anything else goes through encoding/json.
func decodeFields(data string, f *telemetry.Fields) error {
	f.Reset()
	if err := decodeFlat(data, f); err == nil {
		return nil
	}
	f.Reset()
	return json.Unmarshal([]byte(data), f)
}

// decodeFlat reads {"name":"value",…} with no whitespace but what JSON
// allows, failing (errNotFlat) on anything else.
func decodeFlat(s string, f *telemetry.Fields) error {
	i := skipSpace(s, 0)
	if i >= len(s) || s[i] != '{' {
		return errNotFlat
	}
	i = skipSpace(s, i+1)
	if i < len(s) && s[i] == '}' {
		if skipSpace(s, i+1) != len(s) {
			return errNotFlat
		}
		return nil
	}
	for {
		name, j, err := jsonString(s, i)
		if err != nil {
			return err
		}
		j = skipSpace(s, j)
		if j >= len(s) || s[j] != ':' {
			return errNotFlat
		}
		value, k, err := jsonString(s, skipSpace(s, j+1))
		if err != nil {
			return err
		}
		f.Set(name, value)
		k = skipSpace(s, k)
		if k >= len(s) {
			return errNotFlat
		}
		switch s[k] {
		case ',':
			i = skipSpace(s, k+1)
		case '}':
			if skipSpace(s, k+1) != len(s) {
				return errNotFlat
			}
			return nil
		default:
			return errNotFlat
		}
	}
}

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// jsonString reads the JSON string starting at s[i] and returns its value
// and the index after it. A string with escapes is decoded by
// encoding/json.
func jsonString(s string, i int) (string, int, error) {
	if i >= len(s) || s[i] != '"' {
		return "", 0, errNotFlat
	}
	escaped := false
	for j := i + 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '\\':
			escaped = true
			j++
		case c == '"':
			if !escaped {
				return s[i+1 : j], j + 1, nil
			}
			var v string
			if err := json.Unmarshal([]byte(s[i:j+1]), &v); err != nil {
				return "", 0, errNotFlat
			}
			return v, j + 1, nil
		case c < 0x20:
			return "", 0, errNotFlat
		}
	}
	return "", 0, errNotFlat
}
