#include "textflag.h"

// func pairScanAVX2(a, b *byte, blocks int, c1, c2 byte) (scanned int, mask uint32)
//
// For each block of 32 positions k: bit k of the mask is set when a[k] == c1
// and b[k] == c2. Returns at the first block with a bit set: the number of
// blocks before it and its mask; else blocks and 0.
TEXT ·pairScanAVX2(SB), NOSPLIT, $0-44
	MOVQ a+0(FP), SI
	MOVQ b+8(FP), DI
	MOVQ blocks+16(FP), CX
	MOVBLZX c1+24(FP), AX
	MOVBLZX c2+25(FP), BX
	VMOVD AX, X0
	VPBROADCASTB X0, Y0
	VMOVD BX, X1
	VPBROADCASTB X1, Y1
	XORQ DX, DX

loop:
	CMPQ DX, CX
	JGE  none
	VPCMPEQB (SI), Y0, Y2
	VPCMPEQB (DI), Y1, Y3
	VPAND    Y2, Y3, Y2
	VPMOVMSKB Y2, R8
	TESTL R8, R8
	JNZ   found
	ADDQ $32, SI
	ADDQ $32, DI
	INCQ DX
	JMP  loop

found:
	VZEROUPPER
	MOVQ DX, scanned+32(FP)
	MOVL R8, mask+40(FP)
	RET

none:
	VZEROUPPER
	MOVQ CX, scanned+32(FP)
	MOVL $0, mask+40(FP)
	RET
