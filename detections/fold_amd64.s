#include "textflag.h"

DATA foldA<>+0(SB)/1, $0x40
GLOBL foldA<>(SB), RODATA|NOPTR, $1
DATA foldZ<>+0(SB)/1, $0x5B
GLOBL foldZ<>(SB), RODATA|NOPTR, $1
DATA fold20<>+0(SB)/1, $0x20
GLOBL fold20<>(SB), RODATA|NOPTR, $1

// func foldASCIIAVX2(dst, src *byte, n int) int
//
// Lower-cases src into dst 32 bytes at a time while the blocks are ASCII;
// returns how many bytes it wrote (a multiple of 32, at most n).
TEXT ·foldASCIIAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	VPBROADCASTB foldA<>(SB), Y4
	VPBROADCASTB foldZ<>(SB), Y5
	VPBROADCASTB fold20<>(SB), Y6
	XORQ DX, DX

loop:
	LEAQ 32(DX), AX
	CMPQ AX, CX
	JGT  done
	VMOVDQU (SI)(DX*1), Y0
	VPMOVMSKB Y0, AX
	TESTL AX, AX
	JNZ   done
	// Bytes are < 0x80, so signed compares order them: upper when
	// 'A'-1 < x and x < 'Z'+1.
	VPCMPGTB Y4, Y0, Y1
	VPCMPGTB Y0, Y5, Y2
	VPAND    Y1, Y2, Y1
	VPAND    Y6, Y1, Y1
	VPOR     Y1, Y0, Y0
	VMOVDQU  Y0, (DI)(DX*1)
	ADDQ $32, DX
	JMP  loop

done:
	VZEROUPPER
	MOVQ DX, ret+24(FP)
	RET

// func needsFoldAVX2(src *byte, n int) (found bool, checked int)
//
// Reports whether a block of 32 bytes of src holds a byte folding would
// change (an upper-case ASCII letter or a byte ≥ 0x80), testing whole
// blocks only; checked is how many bytes it tested when it found none.
TEXT ·needsFoldAVX2(SB), NOSPLIT, $0-32
	MOVQ src+0(FP), SI
	MOVQ n+8(FP), CX
	VPBROADCASTB foldA<>(SB), Y4
	VPBROADCASTB foldZ<>(SB), Y5
	XORQ DX, DX

nloop:
	LEAQ 32(DX), AX
	CMPQ AX, CX
	JGT  nnone
	VMOVDQU (SI)(DX*1), Y0
	VPCMPGTB Y4, Y0, Y1
	VPCMPGTB Y0, Y5, Y2
	VPAND    Y1, Y2, Y1
	VPOR     Y0, Y1, Y1
	VPMOVMSKB Y1, AX
	TESTL AX, AX
	JNZ   nfound
	ADDQ $32, DX
	JMP  nloop

nfound:
	VZEROUPPER
	MOVB $1, found+16(FP)
	MOVQ DX, checked+24(FP)
	RET

nnone:
	VZEROUPPER
	MOVB $0, found+16(FP)
	MOVQ DX, checked+24(FP)
	RET
