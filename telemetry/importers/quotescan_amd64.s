#include "textflag.h"

// func quoteScanAVX2(p *byte, blocks int) (scanned int, mask uint32)
TEXT ·quoteScanAVX2(SB), NOSPLIT, $0-28
	MOVQ p+0(FP), SI
	MOVQ blocks+8(FP), CX
	MOVL $0x22, AX
	VMOVD AX, X0
	VPBROADCASTB X0, Y0
	MOVL $0x5c, BX
	VMOVD BX, X1
	VPBROADCASTB X1, Y1
	XORQ DX, DX

loop:
	CMPQ DX, CX
	JGE  none
	VMOVDQU (SI), Y2
	VPCMPEQB Y2, Y0, Y3
	VPCMPEQB Y2, Y1, Y4
	VPOR     Y3, Y4, Y3
	VPMOVMSKB Y3, R8
	TESTL R8, R8
	JNZ   found
	ADDQ $32, SI
	INCQ DX
	JMP  loop

found:
	VZEROUPPER
	MOVQ DX, scanned+16(FP)
	MOVL R8, mask+24(FP)
	RET

none:
	VZEROUPPER
	MOVQ CX, scanned+16(FP)
	MOVL $0, mask+24(FP)
	RET
