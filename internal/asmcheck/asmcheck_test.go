package asmcheck

import (
	"slices"
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
