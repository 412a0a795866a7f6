//go:build amd64 && !purego

#include "textflag.h"

DATA expc<>+0(SB)/4, $0x42b00000  // 88
DATA expc<>+4(SB)/4, $0xc2ae0000  // -87
DATA expc<>+8(SB)/4, $0x3fb8aa3b  // log2(e)
DATA expc<>+12(SB)/4, $0x3f317200 // ln2 hi
DATA expc<>+16(SB)/4, $0x35bfbe8e // ln2 lo
DATA expc<>+20(SB)/4, $0x3ab60b61 // 1/720
DATA expc<>+24(SB)/4, $0x3c088889 // 1/120
DATA expc<>+28(SB)/4, $0x3d2aaaab // 1/24
DATA expc<>+32(SB)/4, $0x3e2aaaab // 1/6
DATA expc<>+36(SB)/4, $0x3f000000 // 0.5
DATA expc<>+40(SB)/4, $0x3f800000 // 1
DATA expc<>+44(SB)/4, $0x0000007f // 127 (int)
GLOBL expc<>(SB), RODATA|NOPTR, $48

// func sigmoidAVX(dst, src *float32, n int)
// dst[i] = 1/(1+exp(-src[i])), n a multiple of 8.
TEXT ·sigmoidAVX(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX
	VBROADCASTSS expc<>+0(SB), Y8
	VBROADCASTSS expc<>+4(SB), Y9
	VBROADCASTSS expc<>+8(SB), Y10
	VBROADCASTSS expc<>+12(SB), Y11
	VBROADCASTSS expc<>+16(SB), Y12
	VBROADCASTSS expc<>+40(SB), Y13
	VBROADCASTSS expc<>+44(SB), Y14
	VXORPS       Y15, Y15, Y15

sigloop:
	TESTQ CX, CX
	JE    sigdone
	VMOVUPS      (SI), Y0
	VSUBPS       Y0, Y15, Y0       // -x
	VMINPS       Y8, Y0, Y0
	VMAXPS       Y9, Y0, Y0
	VMULPS       Y10, Y0, Y1
	VROUNDPS     $0, Y1, Y1        // k
	VFNMADD231PS Y11, Y1, Y0       // r = x - k*ln2hi
	VFNMADD231PS Y12, Y1, Y0       // r -= k*ln2lo
	VBROADCASTSS expc<>+20(SB), Y2
	VBROADCASTSS expc<>+24(SB), Y3
	VFMADD213PS  Y3, Y0, Y2
	VBROADCASTSS expc<>+28(SB), Y3
	VFMADD213PS  Y3, Y0, Y2
	VBROADCASTSS expc<>+32(SB), Y3
	VFMADD213PS  Y3, Y0, Y2
	VBROADCASTSS expc<>+36(SB), Y3
	VFMADD213PS  Y3, Y0, Y2
	VFMADD213PS  Y13, Y0, Y2
	VFMADD213PS  Y13, Y0, Y2       // p = exp(r)
	VCVTPS2DQ    Y1, Y3
	VPADDD       Y14, Y3, Y3
	VPSLLD       $23, Y3, Y3       // 2^k
	VMULPS       Y3, Y2, Y2        // exp(-x)
	VADDPS       Y13, Y2, Y2
	VDIVPS       Y2, Y13, Y4       // 1/(1+exp(-x))
	VMOVUPS      Y4, (DI)
	ADDQ         $32, SI
	ADDQ         $32, DI
	DECQ         CX
	JMP          sigloop

sigdone:
	VZEROUPPER
	RET

// func mulAddAVX(dst, a, b *float32, n int)
// dst[i] += a[i]*b[i], n a multiple of 8.
TEXT ·mulAddAVX(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DX
	MOVQ n+24(FP), CX
	SHRQ $3, CX

maloop:
	TESTQ CX, CX
	JE    madone
	VMOVUPS     (SI), Y0
	VMOVUPS     (DI), Y1
	VFMADD231PS (DX), Y0, Y1
	VMOVUPS     Y1, (DI)
	ADDQ        $32, SI
	ADDQ        $32, DI
	ADDQ        $32, DX
	DECQ        CX
	JMP         maloop

madone:
	VZEROUPPER
	RET
