package importers

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/quarry-sec/quarry/internal/asmcheck"
)

// TestAssemblyIsVEX checks that this package's AVX2 assembly writes XMM
// registers with VEX-encoded instructions only: a legacy SSE move among
// 256-bit code cost each call ≈ 110 ns on the benchmark machine (see
// asmcheck).
func TestAssemblyIsVEX(t *testing.T) {
	files, err := filepath.Glob("*_amd64.s")
	if err != nil || len(files) == 0 {
		t.Fatalf("no assembly found (%v)", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range asmcheck.LegacySSE(f, string(b)) {
			t.Errorf("legacy SSE instruction: %s", bad)
		}
	}
}
