package attack

import (
	"bytes"
	_ "embed" // for the compiled-in data
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

//go:generate go run ./internal/gen -stix ../../shared/attack/enterprise-attack.json -v19 ../../shared/attack/v19 -out data

// The embedded data, written by internal/gen (see go:generate above).
var (
	//go:embed data/attack.kb
	embeddedKB []byte
	//go:embed data/v19.json.gz
	embeddedOverlay []byte
)

// Names of the files generate writes into data/, and Update into a data
// directory's attack/ folder.
const (
	// KBFile is the compact knowledge base (WriteCompact) in a data
	// directory.
	KBFile = "attack.gob.gz"
	// EmbeddedKBFile is the knowledge base generate writes into data/ for
	// the binary, in the flat form (WriteFlat; see flat.go): read in place,
	// without inflating or copying, it makes the binary ≈ 5 MB larger and
	// every command that needs ATT&CK start ≈ 0.1 s sooner.
	EmbeddedKBFile = "attack.kb"
	// OverlayFile is the compact v19 overlay.
	OverlayFile = "v19.json.gz"
	// dataSubdir is the folder of a Quarry data directory that holds KBFile.
	dataSubdir = "attack"
)

var embedded = sync.OnceValues(func() (*KB, error) {
	kb, err := readFlat(embeddedKB)
	if err != nil {
		return nil, fmt.Errorf("embedded %s: %w", EmbeddedKBFile, err)
	}
	return kb, nil
})

var embeddedOv = sync.OnceValues(func() (*Overlay, error) {
	o, err := ReadOverlay(bytes.NewReader(embeddedOverlay))
	if err != nil {
		return nil, fmt.Errorf("embedded %s: %w", OverlayFile, err)
	}
	return o, nil
})

// Embedded returns the knowledge base compiled into the binary: ATT&CK
// v18.1 with the v19 overlay. It is loaded once; later calls share it.
func Embedded() (*KB, error) { return embedded() }

// EmbeddedOverlay returns the v19 overlay compiled into the binary.
func EmbeddedOverlay() (*Overlay, error) { return embeddedOv() }

// DataPath returns where Update writes the knowledge base in a data
// directory.
func DataPath(dataDir string) string {
	return filepath.Join(dataDir, dataSubdir, KBFile)
}

// Load returns the knowledge base of a data directory, written there by
// Update, or the embedded one when the directory holds none. A file that is
// present but unreadable is an error, not a silent fallback.
func Load(dataDir string) (*KB, error) {
	if dataDir == "" {
		return Embedded()
	}
	path := DataPath(dataDir)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Embedded()
	}
	if err != nil {
		return nil, fmt.Errorf("load attack data: %w", err)
	}
	kb, err := ReadCompact(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("load attack data %s: %w", path, err)
	}
	return kb, nil
}
