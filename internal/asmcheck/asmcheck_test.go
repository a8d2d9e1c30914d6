package asmcheck

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestLegacySSE(t *testing.T) {
	src := `#include "textflag.h"

// func f(p *byte, c byte)
TEXT ·f(SB), NOSPLIT, $0-9
	MOVQ p+0(FP), SI
	MOVBLZX c+8(FP), AX
	MOVD AX, X0 // legacy
	VMOVD AX, X1
	VPBROADCASTB X1, Y1
	MOVQ shift+16(FP), X15
	XORQ DX, DX
	PXOR X2,X3
	VPGATHERDD Y4, (BX)(Y2*4), Y5
loop:
	VZEROUPPER
	RET
`
	got := LegacySSE("f.s", src)
	want := []string{"f.s:7: MOVD AX, X0", "f.s:10: MOVQ shift+16(FP), X15", "f.s:12: PXOR X2,X3"}
	if !slices.Equal(got, want) {
		t.Fatalf("LegacySSE = %q, want %q", got, want)
	}
}

// TestRepositoryAssemblyIsVEX checks every amd64 assembly file of the
// module: a legacy SSE move among 256-bit code cost each call of the JSON
// string and literal scans ≈ 110 ns on the benchmark machine.
func TestRepositoryAssemblyIsVEX(t *testing.T) {
	root := filepath.Join("..", "..")
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_amd64.s") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		n++
		for _, bad := range LegacySSE(path, string(b)) {
			t.Errorf("legacy SSE instruction: %s", bad)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 3 { // detections' gram and pair scans, importers' quote scan
		t.Fatalf("found %d amd64 assembly files under %s, want at least 3", n, root)
	}
}
