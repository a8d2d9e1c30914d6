package attack

import (
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
)

// The files of an overlay directory, such as ../shared/attack/v19.
const (
	overlayTacticsFile    = "tactics_v19.json"
	overlayTechniquesFile = "techniques_v19.json"
	overlayIDMapFile      = "v18_to_v19_id_map.json"
)

// ReadOverlayDir reads the v19 overlay from a directory holding
// tactics_v19.json, techniques_v19.json and v18_to_v19_id_map.json.
func ReadOverlayDir(dir string) (*Overlay, error) {
	var tac struct {
		Meta struct {
			AttackVersion string `json:"attack_version"`
		} `json:"meta"`
		Tactics []OverlayTactic `json:"tactics"`
	}
	if err := readJSONFile(filepath.Join(dir, overlayTacticsFile), &tac); err != nil {
		return nil, err
	}
	var tech struct {
		Techniques []OverlayTechnique `json:"techniques"`
	}
	if err := readJSONFile(filepath.Join(dir, overlayTechniquesFile), &tech); err != nil {
		return nil, err
	}
	var idMap map[string]string
	if err := readJSONFile(filepath.Join(dir, overlayIDMapFile), &idMap); err != nil {
		return nil, err
	}
	o := &Overlay{Version: tac.Meta.AttackVersion, Tactics: tac.Tactics, Techniques: tech.Techniques}
	for old, nw := range idMap {
		o.Redirects = append(o.Redirects, OverlayRedirect{OldID: old, NewID: nw})
	}
	sort.Slice(o.Redirects, func(i, j int) bool { return o.Redirects[i].OldID < o.Redirects[j].OldID })
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("overlay %s: %w", dir, err)
	}
	return o, nil
}

func readJSONFile(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("overlay: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("overlay %s: %w", path, describeJSONError(err))
	}
	return nil
}

// describeJSONError adds the byte offset to a JSON syntax error.
func describeJSONError(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("at byte offset %d: %w", se.Offset, err)
	}
	return err
}

// validate reports an overlay the KB could not use.
func (o *Overlay) validate() error {
	if o.Version == "" {
		return errors.New("no ATT&CK version (tactics meta.attack_version)")
	}
	if len(o.Tactics) == 0 {
		return errors.New("no tactics")
	}
	for i, t := range o.Tactics {
		if t.ID == "" || t.ShortName == "" || t.MatrixOrder <= 0 {
			return fmt.Errorf("tactics[%d]: id, shortname and a positive matrix_order are required", i)
		}
	}
	for i, t := range o.Techniques {
		if t.ID == "" || t.Name == "" {
			return fmt.Errorf("techniques[%d]: id and name are required", i)
		}
	}
	for _, r := range o.Redirects {
		if r.OldID == "" || r.NewID == "" {
			return fmt.Errorf("id map: empty id in %q -> %q", r.OldID, r.NewID)
		}
	}
	return nil
}

// WriteOverlay writes o in its compact form: gzip-compressed JSON.
func WriteOverlay(w io.Writer, o *Overlay) error {
	zw := gzip.NewWriter(w)
	if err := json.NewEncoder(zw).Encode(o); err != nil {
		return fmt.Errorf("write overlay: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("write overlay: %w", err)
	}
	return nil
}

// ReadOverlay reads an overlay written by WriteOverlay.
func ReadOverlay(r io.Reader) (*Overlay, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("read overlay: %w", err)
	}
	defer zr.Close()
	var o Overlay
	if err := json.NewDecoder(zr).Decode(&o); err != nil {
		return nil, fmt.Errorf("read overlay: %w", describeJSONError(err))
	}
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("read overlay: %w", err)
	}
	return &o, nil
}
