// Command gen writes the attack package's embedded data: the compact
// knowledge base (MITRE's STIX bundle with the v19 overlay laid over it) and
// the compact v19 overlay that Update lays over later bundles.
//
// Run it through go generate in the attack folder:
//
//	go run ./internal/gen -stix ../../shared/attack/enterprise-attack.json -v19 ../../shared/attack/v19 -out data
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/quarry-sec/quarry/attack"
)

func main() {
	stixPath := flag.String("stix", "", "ATT&CK STIX 2.1 bundle (enterprise-attack.json)")
	v19Dir := flag.String("v19", "", "folder of the v19 overlay files")
	outDir := flag.String("out", "data", "folder to write "+attack.EmbeddedKBFile+" and "+attack.OverlayFile+" into")
	flag.Parse()
	if err := run(*stixPath, *v19Dir, *outDir); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(stixPath, v19Dir, outDir string) error {
	if stixPath == "" || v19Dir == "" {
		return fmt.Errorf("both -stix and -v19 are required")
	}
	f, err := os.Open(stixPath)
	if err != nil {
		return err
	}
	defer f.Close()
	kb, err := attack.ParseSTIX(f)
	if err != nil {
		return err
	}
	ov, err := attack.ReadOverlayDir(v19Dir)
	if err != nil {
		return err
	}
	kb = kb.WithOverlay(ov)

	var kbBuf, ovBuf bytes.Buffer
	if err := attack.WriteFlat(&kbBuf, kb); err != nil {
		return err
	}
	if err := attack.WriteOverlay(&ovBuf, ov); err != nil {
		return err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(outDir, attack.EmbeddedKBFile), kbBuf.Bytes(), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(outDir, attack.OverlayFile), ovBuf.Bytes(), 0o644); err != nil {
		return err
	}
	c := kb.Counts()
	fmt.Printf("gen: ATT&CK %s + overlay %s: %d live techniques (%d + %d sub), %d tactics (+%d in v19), %d mitigations, %d groups, %d software, %d redirects; %s %d bytes, %s %d bytes\n",
		c.Version, kb.OverlayVersion(), c.Techniques, c.ParentTechniques, c.Subtechniques, c.Tactics, c.TacticsV19,
		c.Mitigations, c.Groups, c.Software, c.Redirects, attack.EmbeddedKBFile, kbBuf.Len(), attack.OverlayFile, ovBuf.Len())
	return nil
}
