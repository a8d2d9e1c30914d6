package attack

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// stixObject is the union of the STIX fields the loader reads, whatever the
// object's type.
type stixObject struct {
	Type        string    `json:"type"`
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Revoked     bool      `json:"revoked"`
	Deprecated  bool      `json:"x_mitre_deprecated"`
	Version     string    `json:"x_mitre_version"`
	ExtRefs     []extRef  `json:"external_references"`
	Platforms   []string  `json:"x_mitre_platforms"`
	Aliases     []string  `json:"aliases"`
	MitreAlias  []string  `json:"x_mitre_aliases"`
	KillChain   []kcPhase `json:"kill_chain_phases"`

	// attack-pattern
	IsSubtechnique bool   `json:"x_mitre_is_subtechnique"`
	Detection      string `json:"x_mitre_detection"`

	// x-mitre-tactic, x-mitre-matrix
	ShortName  string   `json:"x_mitre_shortname"`
	TacticRefs []string `json:"tactic_refs"`

	// relationship
	RelType   string `json:"relationship_type"`
	SourceRef string `json:"source_ref"`
	TargetRef string `json:"target_ref"`

	// x-mitre-detection-strategy, x-mitre-analytic
	AnalyticRefs  []string       `json:"x_mitre_analytic_refs"`
	LogSourceRefs []logSourceRef `json:"x_mitre_log_source_references"`
}

type extRef struct {
	SourceName string `json:"source_name"`
	ExternalID string `json:"external_id"`
	URL        string `json:"url"`
}

type kcPhase struct {
	KillChainName string `json:"kill_chain_name"`
	PhaseName     string `json:"phase_name"`
}

type logSourceRef struct {
	DataComponentRef string `json:"x_mitre_data_component_ref"`
	Name             string `json:"name"`
	Channel          string `json:"channel"`
}

// attackRef returns the object's ATT&CK ID and URL, from the external
// reference whose source is mitre-attack.
func (o *stixObject) attackRef() (id, url string) {
	for _, r := range o.ExtRefs {
		if r.SourceName == "mitre-attack" {
			return r.ExternalID, r.URL
		}
	}
	return "", ""
}

// readBundle streams a STIX bundle from r and calls fn for each object, with
// its index in the objects array. Errors name the byte offset and the object
// index.
func readBundle(r io.Reader, fn func(i int, o *stixObject) error) error {
	dec := json.NewDecoder(r)
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("stix: not JSON at byte offset %d: %w", dec.InputOffset(), eofAsUnexpected(err))
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("stix: top-level value is %s, want an object (a STIX bundle)", describeToken(tok))
	}
	var bundleType string
	sawObjects := false
	for dec.More() {
		keyTok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("stix: bundle at byte offset %d: %w", dec.InputOffset(), eofAsUnexpected(err))
		}
		key, _ := keyTok.(string)
		switch key {
		case "type":
			if err := dec.Decode(&bundleType); err != nil {
				return fmt.Errorf("stix: bundle field \"type\" at byte offset %d: %w", dec.InputOffset(), eofAsUnexpected(err))
			}
			if bundleType != "bundle" {
				return fmt.Errorf("stix: top-level \"type\" is %q, want \"bundle\"", bundleType)
			}
		case "objects":
			sawObjects = true
			if err := readObjects(dec, fn); err != nil {
				return err
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return fmt.Errorf("stix: bundle field %q at byte offset %d: %w", key, dec.InputOffset(), eofAsUnexpected(err))
			}
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return fmt.Errorf("stix: end of bundle at byte offset %d: %w", dec.InputOffset(), eofAsUnexpected(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("stix: unexpected data after the bundle at byte offset %d", dec.InputOffset())
	}
	if bundleType == "" {
		return errors.New("stix: top-level object has no \"type\": not a STIX bundle")
	}
	if !sawObjects {
		return errors.New("stix: bundle has no \"objects\" array")
	}
	return nil
}

func readObjects(dec *json.Decoder, fn func(i int, o *stixObject) error) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("stix: bundle field \"objects\" at byte offset %d: %w", dec.InputOffset(), eofAsUnexpected(err))
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return fmt.Errorf("stix: bundle field \"objects\" is %s, want an array", describeToken(tok))
	}
	for i := 0; dec.More(); i++ {
		off := dec.InputOffset()
		var o stixObject
		if err := dec.Decode(&o); err != nil {
			return fmt.Errorf("stix: objects[%d] at byte offset %d: %w", i, off, eofAsUnexpected(err))
		}
		if err := fn(i, &o); err != nil {
			return fmt.Errorf("stix: objects[%d] (%s) at byte offset %d: %w", i, o.ID, off, err)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing bracket
		return fmt.Errorf("stix: end of \"objects\" at byte offset %d: %w", dec.InputOffset(), eofAsUnexpected(err))
	}
	return nil
}

// eofAsUnexpected reports the end of input inside a value as truncation (a
// bare io.EOF would read as success).
// A JSON type error is reworded to name the STIX field rather than Go's.
func eofAsUnexpected(err error) error {
	var te *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("input truncated: %w", io.ErrUnexpectedEOF)
	case errors.As(err, &te) && te.Field != "":
		return fmt.Errorf("field %q is a JSON %s, want %s: %w", te.Field, te.Value, jsonKind(te.Type.Kind().String()), err)
	}
	return err
}

// jsonKind names a Go kind as its JSON counterpart.
func jsonKind(kind string) string {
	switch kind {
	case "bool":
		return "boolean"
	case "slice":
		return "array"
	case "struct", "map":
		return "object"
	case "int", "int64", "float64":
		return "number"
	}
	return kind
}

func describeToken(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		switch v {
		case '[':
			return "an array"
		case '{':
			return "an object"
		}
		return fmt.Sprintf("%q", string(v))
	case string:
		return "a string"
	case float64, json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", tok)
}
