//go:build amd64 && !purego

#include "textflag.h"

// AVX-512 versions of the two kernels that evaluate sigmoids, 16 lanes at
// a time; a last half vector (c is a multiple of 8) is masked.

DATA zc<>+0(SB)/4, $0x42b00000  // 88
DATA zc<>+4(SB)/4, $0xc2ae0000  // -87
DATA zc<>+8(SB)/4, $0x3fb8aa3b  // log2(e)
DATA zc<>+12(SB)/4, $0x3f317200 // ln2 hi
DATA zc<>+16(SB)/4, $0x35bfbe8e // ln2 lo
DATA zc<>+20(SB)/4, $0x3ab60b61 // 1/720
DATA zc<>+24(SB)/4, $0x3c088889 // 1/120
DATA zc<>+28(SB)/4, $0x3d2aaaab // 1/24
DATA zc<>+32(SB)/4, $0x3e2aaaab // 1/6
DATA zc<>+36(SB)/4, $0x3f000000 // 0.5
DATA zc<>+40(SB)/4, $0x3f800000 // 1
DATA zc<>+44(SB)/4, $0x40000000 // 2
DATA zc<>+48(SB)/4, $0x80000000 // sign bit
GLOBL zc<>(SB), RODATA|NOPTR, $52

// SIGMOID512 sets S = 1/(1+exp(-U)) as SIGMOID does, the exponent applied
// with VSCALEFPS and the reciprocal refined by one Newton step; U is kept.
#define SIGMOID512(U, S, T1, T2) \
	VPXORD.BCST       zc<>+48(SB), U, S; \
	VMINPS.BCST       zc<>+0(SB), S, S; \
	VMAXPS.BCST       zc<>+4(SB), S, S; \
	VMULPS.BCST       zc<>+8(SB), S, T1; \
	VRNDSCALEPS       $0, T1, T1; \
	VFNMADD231PS.BCST zc<>+12(SB), T1, S; \
	VFNMADD231PS.BCST zc<>+16(SB), T1, S; \
	VBROADCASTSS      zc<>+20(SB), T2; \
	VFMADD213PS.BCST  zc<>+24(SB), S, T2; \
	VFMADD213PS.BCST  zc<>+28(SB), S, T2; \
	VFMADD213PS.BCST  zc<>+32(SB), S, T2; \
	VFMADD213PS.BCST  zc<>+36(SB), S, T2; \
	VFMADD213PS.BCST  zc<>+40(SB), S, T2; \
	VFMADD213PS.BCST  zc<>+40(SB), S, T2; \
	VSCALEFPS         T1, T2, T2; \
	VADDPS.BCST       zc<>+40(SB), T2, T2; \
	VRCP14PS          T2, S; \
	VFNMADD213PS.BCST zc<>+44(SB), S, T2; \
	VMULPS            T2, S, S

// func affine512(dst, x *float32, rows, c int, scale, shift, mul, sig *float32, act int)
TEXT ·affine512(SB), NOSPLIT, $0-72
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ rows+16(FP), CX
	MOVQ c+24(FP), R10
	SHLQ $2, R10
	MOVQ scale+32(FP), R8
	MOVQ shift+40(FP), R9
	MOVQ mul+48(FP), R11
	MOVQ sig+56(FP), R12
	MOVQ act+64(FP), AX
	VPXORD Z15, Z15, Z15

zarow:
	XORQ BX, BX

zacol:
	MOVQ R10, DX
	SUBQ BX, DX
	MOVQ  $0xffff, R13
	CMPQ  DX, $64
	JGE   zafull
	MOVQ  $0xff, R13

zafull:
	KMOVW R13, K1
	VMOVUPS.Z   (SI)(BX*1), K1, Z0
	VMOVUPS.Z   (R8)(BX*1), K1, Z1
	VMOVUPS.Z   (R9)(BX*1), K1, Z2
	VFMADD213PS Z2, Z1, Z0
	CMPQ        AX, $1
	JEQ         zaswish
	CMPQ        AX, $2
	JNE         zamul
	VMAXPS      Z0, Z15, Z0
	JMP         zamul

zaswish:
	SIGMOID512(Z0, Z2, Z3, Z4)
	VMULPS Z2, Z0, Z0
	TESTQ  R12, R12
	JEQ    zamul
	VMOVUPS Z2, K1, (R12)(BX*1)

zamul:
	TESTQ     R11, R11
	JEQ       zastore
	VMOVUPS.Z (R11)(BX*1), K1, Z5
	VMULPS    Z5, Z0, Z0

zastore:
	VMOVUPS Z0, K1, (DI)(BX*1)
	ADDQ    $64, BX
	CMPQ    BX, R10
	JLT     zacol
	ADDQ    R10, SI
	ADDQ    R10, DI
	TESTQ   R12, R12
	JEQ     zanext
	ADDQ    R10, R12

zanext:
	DECQ CX
	JNZ  zarow
	VZEROUPPER
	RET

// func actGrad512(dz, dy, x *float32, rows, c int, scale, shift, gmul, gadd, sig *float32, act int, sdz, sdzx *float32)
TEXT ·actGrad512(SB), NOSPLIT, $0-104
	MOVQ c+32(FP), R10
	SHLQ $2, R10
	MOVQ act+80(FP), AX
	VPXORD Z15, Z15, Z15
	XORQ BX, BX

zgcol:
	MOVQ  R10, DX
	SUBQ  BX, DX
	MOVQ  $0xffff, R13
	CMPQ  DX, $64
	JGE   zgfull
	MOVQ  $0xff, R13

zgfull:
	KMOVW R13, K1
	MOVQ      dz+0(FP), DI
	MOVQ      dy+8(FP), DX
	MOVQ      x+16(FP), SI
	MOVQ      rows+24(FP), CX
	MOVQ      sig+72(FP), R11
	MOVQ      scale+40(FP), R8
	VMOVUPS.Z (R8)(BX*1), K1, Z8
	MOVQ      shift+48(FP), R8
	VMOVUPS.Z (R8)(BX*1), K1, Z9
	MOVQ      gmul+56(FP), R8
	VMOVAPS   Z15, Z10
	TESTQ     R8, R8
	JEQ       zgnomul
	VMOVUPS.Z (R8)(BX*1), K1, Z10

zgnomul:
	MOVQ      gadd+64(FP), R9
	VMOVAPS   Z15, Z11
	TESTQ     R9, R9
	JEQ       zgnoadd
	VMOVUPS.Z (R9)(BX*1), K1, Z11

zgnoadd:
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13

zgrow:
	VMOVAPS   Z11, Z0
	TESTQ     DX, DX
	JEQ       zgx
	VMOVUPS.Z (DX)(BX*1), K1, Z1
	TESTQ     R8, R8
	JEQ       zgplain
	VFMADD231PS Z10, Z1, Z0
	JMP       zgx

zgplain:
	VADDPS Z1, Z0, Z0

zgx:
	VMOVUPS.Z   (SI)(BX*1), K1, Z1
	VMOVAPS     Z1, Z2
	VFMADD213PS Z9, Z8, Z2
	CMPQ        AX, $1
	JEQ         zgswish
	CMPQ        AX, $2
	JNE         zgstore
	VCMPPS      $0x1e, Z15, Z2, K2
	VMOVAPS.Z   Z0, K2, Z0
	JMP         zgstore

zgswish:
	TESTQ     R11, R11
	JEQ       zgsigma
	VMOVUPS.Z (R11)(BX*1), K1, Z3
	JMP       zgsigd

zgsigma:
	SIGMOID512(Z2, Z3, Z4, Z5)

zgsigd:
	VBROADCASTSS      zc<>+40(SB), Z4
	VSUBPS            Z3, Z4, Z4
	VFMADD213PS.BCST  zc<>+40(SB), Z2, Z4
	VMULPS            Z3, Z4, Z4
	VMULPS            Z4, Z0, Z0

zgstore:
	VMOVUPS     Z0, K1, (DI)(BX*1)
	VADDPS      Z0, Z12, Z12
	VFMADD231PS Z1, Z0, Z13
	ADDQ        R10, SI
	ADDQ        R10, DI
	TESTQ       DX, DX
	JEQ         zgnsig
	ADDQ        R10, DX

zgnsig:
	TESTQ R11, R11
	JEQ   zgnext
	ADDQ  R10, R11

zgnext:
	DECQ CX
	JNZ  zgrow
	MOVQ      sdz+88(FP), R9
	VMOVUPS.Z (R9)(BX*1), K1, Z6
	VADDPS    Z6, Z12, Z12
	VMOVUPS   Z12, K1, (R9)(BX*1)
	MOVQ      sdzx+96(FP), R9
	VMOVUPS.Z (R9)(BX*1), K1, Z6
	VADDPS    Z6, Z13, Z13
	VMOVUPS   Z13, K1, (R9)(BX*1)
	ADDQ      $64, BX
	CMPQ      BX, R10
	JLT       zgcol
	VZEROUPPER
	RET

// func dwRun512(o, x, w *float32, c, n, ostep, xstep int, taps *int32, ntaps int, acc int)
// dwRunAVX with 64 channels at a time, then 16 (the last 8 masked).
TEXT ·dwRun512(SB), NOSPLIT, $0-80
	MOVQ o+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ w+16(FP), DX
	MOVQ c+24(FP), R10
	SHLQ $2, R10
	MOVQ n+32(FP), CX
	MOVQ taps+56(FP), R8
	MOVQ ntaps+64(FP), R9

zwpix:
	XORQ BX, BX

zwcol64:
	MOVQ R10, AX
	SUBQ BX, AX
	CMPQ AX, $256
	JLT  zwcol16
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	MOVQ  acc+72(FP), AX
	TESTQ AX, AX
	JEQ   zwtaps64
	VMOVUPS (DI)(BX*1), Z0
	VMOVUPS 64(DI)(BX*1), Z1
	VMOVUPS 128(DI)(BX*1), Z2
	VMOVUPS 192(DI)(BX*1), Z3

zwtaps64:
	XORQ R11, R11

zwtap64:
	CMPQ R11, R9
	JGE  zwst64
	MOVLQSX     (R8)(R11*8), R12
	MOVLQSX     4(R8)(R11*8), R13
	LEAQ        (SI)(R12*4), R12
	LEAQ        (DX)(R13*4), R13
	ADDQ        BX, R12
	ADDQ        BX, R13
	VMOVUPS     (R12), Z4
	VMOVUPS     64(R12), Z5
	VMOVUPS     128(R12), Z6
	VMOVUPS     192(R12), Z7
	VFMADD231PS (R13), Z4, Z0
	VFMADD231PS 64(R13), Z5, Z1
	VFMADD231PS 128(R13), Z6, Z2
	VFMADD231PS 192(R13), Z7, Z3
	INCQ        R11
	JMP         zwtap64

zwst64:
	VMOVUPS Z0, (DI)(BX*1)
	VMOVUPS Z1, 64(DI)(BX*1)
	VMOVUPS Z2, 128(DI)(BX*1)
	VMOVUPS Z3, 192(DI)(BX*1)
	ADDQ    $256, BX
	JMP     zwcol64

zwcol16:
	CMPQ BX, R10
	JGE  zwnext
	MOVQ $0xffff, R13
	CMPQ AX, $64
	JGE  zwfull
	MOVQ $0xff, R13

zwfull:
	KMOVW  R13, K1
	VPXORD Z0, Z0, Z0
	MOVQ   acc+72(FP), AX
	TESTQ  AX, AX
	JEQ    zwtaps16
	VMOVUPS.Z (DI)(BX*1), K1, Z0

zwtaps16:
	XORQ R11, R11

zwtap16:
	CMPQ R11, R9
	JGE  zwst16
	MOVLQSX     (R8)(R11*8), R12
	MOVLQSX     4(R8)(R11*8), R13
	LEAQ        (SI)(R12*4), R12
	LEAQ        (DX)(R13*4), R13
	VMOVUPS.Z   (R12)(BX*1), K1, Z4
	VMOVUPS.Z   (R13)(BX*1), K1, Z5
	VFMADD231PS Z5, Z4, Z0
	INCQ        R11
	JMP         zwtap16

zwst16:
	VMOVUPS Z0, K1, (DI)(BX*1)
	ADDQ    $64, BX
	MOVQ    R10, AX
	SUBQ    BX, AX
	JMP     zwcol16

zwnext:
	MOVQ ostep+40(FP), AX
	LEAQ (DI)(AX*4), DI
	MOVQ xstep+48(FP), AX
	LEAQ (SI)(AX*4), SI
	DECQ CX
	JNZ  zwpix
	VZEROUPPER
	RET

// func dwGradRun512(grad, dy, x *float32, c, n, ostep, xstep int, taps *int32, ntaps int)
// dwGradRunAVX with 64 channels at a time, then 16 (the last 8 masked).
TEXT ·dwGradRun512(SB), NOSPLIT, $0-72
	MOVQ c+24(FP), R10
	SHLQ $2, R10
	MOVQ ostep+40(FP), R9
	SHLQ $2, R9
	MOVQ taps+56(FP), R8
	XORQ BX, BX

zucol:
	CMPQ BX, R10
	JGE  zudone
	MOVQ R10, AX
	SUBQ BX, AX
	MOVQ $0xffff, R13
	CMPQ AX, $64
	JGE  zufull
	MOVQ $0xff, R13

zufull:
	KMOVW R13, K1
	XORQ  R11, R11

zutap:
	CMPQ    R11, ntaps+64(FP)
	JGE     zucolnext
	MOVLQSX (R8)(R11*8), R12
	MOVQ    x+16(FP), SI
	LEAQ    (SI)(R12*4), SI
	ADDQ    BX, SI
	MOVQ    dy+8(FP), DX
	ADDQ    BX, DX
	MOVQ    n+32(FP), CX
	MOVQ    xstep+48(FP), R12
	SHLQ    $2, R12
	CMPQ    AX, $256
	JLT     zu16
	VPXORD  Z0, Z0, Z0
	VPXORD  Z1, Z1, Z1
	VPXORD  Z2, Z2, Z2
	VPXORD  Z3, Z3, Z3

zupix64:
	VMOVUPS     (DX), Z4
	VMOVUPS     64(DX), Z5
	VMOVUPS     128(DX), Z6
	VMOVUPS     192(DX), Z7
	VFMADD231PS (SI), Z4, Z0
	VFMADD231PS 64(SI), Z5, Z1
	VFMADD231PS 128(SI), Z6, Z2
	VFMADD231PS 192(SI), Z7, Z3
	ADDQ        R9, DX
	ADDQ        R12, SI
	DECQ        CX
	JNZ         zupix64
	MOVLQSX 4(R8)(R11*8), R13
	MOVQ    grad+0(FP), DI
	LEAQ    (DI)(R13*4), DI
	ADDQ    BX, DI
	VADDPS  (DI), Z0, Z0
	VADDPS  64(DI), Z1, Z1
	VADDPS  128(DI), Z2, Z2
	VADDPS  192(DI), Z3, Z3
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	VMOVUPS Z2, 128(DI)
	VMOVUPS Z3, 192(DI)
	INCQ    R11
	JMP     zutap

zu16:
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1

zupix16:
	VMOVUPS.Z   (DX), K1, Z4
	VMOVUPS.Z   (SI), K1, Z5
	VFMADD231PS Z5, Z4, Z0
	ADDQ        R9, DX
	ADDQ        R12, SI
	DECQ        CX
	JNZ         zupix16
	MOVLQSX   4(R8)(R11*8), R13
	MOVQ      grad+0(FP), DI
	LEAQ      (DI)(R13*4), DI
	ADDQ      BX, DI
	VMOVUPS.Z (DI), K1, Z6
	VADDPS    Z6, Z0, Z0
	VMOVUPS   Z0, K1, (DI)
	INCQ      R11
	JMP       zutap

zucolnext:
	CMPQ AX, $256
	JLT  zunext16
	ADDQ $256, BX
	JMP  zucol

zunext16:
	ADDQ $64, BX
	JMP  zucol

zudone:
	VZEROUPPER
	RET
