#include "textflag.h"

// Eight 4-byte windows at a time: the windows starting at bytes 0-7 of a
// 16-byte load, in the two 128-bit lanes (windows 0-3 from bytes 0-6,
// windows 4-7 from bytes 4-10).
DATA windowShuf<>+0(SB)/8, $0x0403020103020100
DATA windowShuf<>+8(SB)/8, $0x0605040305040302
DATA windowShuf<>+16(SB)/8, $0x0807060507060504
DATA windowShuf<>+24(SB)/8, $0x0A09080709080706
GLOBL windowShuf<>(SB), RODATA|NOPTR, $32

DATA gramMulConst<>+0(SB)/4, $0x9E3779B1
GLOBL gramMulConst<>(SB), RODATA|NOPTR, $4

DATA gramMul2Const<>+0(SB)/4, $0x85EBCA77
GLOBL gramMul2Const<>(SB), RODATA|NOPTR, $4

DATA low16<>+0(SB)/4, $0xFFFF
GLOBL low16<>(SB), RODATA|NOPTR, $4

DATA low5<>+0(SB)/4, $31
GLOBL low5<>(SB), RODATA|NOPTR, $4

// func gramHitsAVX2(v *byte, nblocks int, bits, bits2, pairs *uint64, shift uint64, out *uint32) int
TEXT ·gramHitsAVX2(SB), NOSPLIT, $0-64
	MOVQ v+0(FP), SI
	MOVQ nblocks+8(FP), CX
	MOVQ bits+16(FP), BX
	MOVQ bits2+24(FP), R12
	MOVQ pairs+32(FP), R13
	VMOVQ shift+40(FP), X15
	MOVQ out+48(FP), DI
	XORQ AX, AX
	XORQ DX, DX
	VMOVDQU windowShuf<>(SB), Y8
	VPBROADCASTD gramMulConst<>(SB), Y9
	VPBROADCASTD low5<>(SB), Y10
	VPBROADCASTD gramMul2Const<>(SB), Y11
	VPBROADCASTD low16<>(SB), Y12

loop:
	TESTQ CX, CX
	JZ    done
	VBROADCASTI128 (SI)(DX*1), Y0
	VPSHUFB Y8, Y0, Y0
	VPMULLD Y9, Y0, Y1
	VPSRLD  X15, Y1, Y1
	VPSRLD  $5, Y1, Y2
	VPAND   Y10, Y1, Y3
	VPCMPEQD Y4, Y4, Y4
	VPXOR   Y5, Y5, Y5
	VPGATHERDD Y4, (BX)(Y2*4), Y5
	VPSRLVD Y3, Y5, Y5
	// The same with the second hash and bitmap.
	VPMULLD Y11, Y0, Y1
	VPSRLD  X15, Y1, Y1
	VPSRLD  $5, Y1, Y2
	VPAND   Y10, Y1, Y3
	VPCMPEQD Y4, Y4, Y4
	VPXOR   Y6, Y6, Y6
	VPGATHERDD Y4, (R12)(Y2*4), Y6
	VPSRLVD Y3, Y6, Y6
	VPAND   Y6, Y5, Y5
	VPSLLD  $31, Y5, Y5
	VMOVMSKPS Y5, R8
	// The window's first two bytes in the exact bitmap of pairs (none
	// when pairs is nil).
	XORQ    R9, R9
	TESTQ   R13, R13
	JZ      emit
	VPAND   Y12, Y0, Y1
	VPSRLD  $5, Y1, Y2
	VPAND   Y10, Y1, Y3
	VPCMPEQD Y4, Y4, Y4
	VPXOR   Y7, Y7, Y7
	VPGATHERDD Y4, (R13)(Y2*4), Y7
	VPSRLVD Y3, Y7, Y7
	VPSLLD  $31, Y7, Y7
	VMOVMSKPS Y7, R9

emit:
	// Offsets out: gram hits tagged 64, pair hits tagged 128.
	TESTQ R8, R8
	JZ    pairs

grams:
	BSFQ R8, R10
	LEAQ 64(DX)(R10*1), R11
	MOVL R11, (DI)(AX*4)
	INCQ AX
	LEAQ -1(R8), R10
	ANDQ R10, R8
	JNZ  grams

pairs:
	TESTQ R9, R9
	JZ    next

pairhits:
	BSFQ R9, R10
	LEAQ 128(DX)(R10*1), R11
	MOVL R11, (DI)(AX*4)
	INCQ AX
	LEAQ -1(R9), R10
	ANDQ R10, R9
	JNZ  pairhits

next:
	ADDQ $8, DX
	DECQ CX
	JMP  loop

done:
	VZEROUPPER
	MOVQ AX, ret+56(FP)
	RET
