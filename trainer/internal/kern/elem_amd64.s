//go:build amd64 && !purego

#include "textflag.h"

// 8-wide constants.
#define V8(name, off, v) DATA name+off+0(SB)/4, v; DATA name+off+4(SB)/4, v; DATA name+off+8(SB)/4, v; DATA name+off+12(SB)/4, v; DATA name+off+16(SB)/4, v; DATA name+off+20(SB)/4, v; DATA name+off+24(SB)/4, v; DATA name+off+28(SB)/4, v

V8(ec<>, 0, $0x42b00000)   // 88
V8(ec<>, 32, $0xc2ae0000)  // -87
V8(ec<>, 64, $0x3fb8aa3b)  // log2(e)
V8(ec<>, 96, $0x3f317200)  // ln2 hi
V8(ec<>, 128, $0x35bfbe8e) // ln2 lo
V8(ec<>, 160, $0x3ab60b61) // 1/720
V8(ec<>, 192, $0x3c088889) // 1/120
V8(ec<>, 224, $0x3d2aaaab) // 1/24
V8(ec<>, 256, $0x3e2aaaab) // 1/6
V8(ec<>, 288, $0x3f000000) // 0.5
V8(ec<>, 320, $0x3f800000) // 1
V8(ec<>, 352, $0x0000007f) // 127
V8(ec<>, 384, $0x80000000) // sign bit
GLOBL ec<>(SB), RODATA|NOPTR, $416

#define C88 ec<>+0(SB)
#define CM87 ec<>+32(SB)
#define CLOG2E ec<>+64(SB)
#define CLN2HI ec<>+96(SB)
#define CLN2LO ec<>+128(SB)
#define CP6 ec<>+160(SB)
#define CP5 ec<>+192(SB)
#define CP4 ec<>+224(SB)
#define CP3 ec<>+256(SB)
#define CP2 ec<>+288(SB)
#define CONE ec<>+320(SB)
#define C127 ec<>+352(SB)
#define CSIGN ec<>+384(SB)

// SIGMOID sets S = 1/(1+exp(-U)), exp on [-87, 88] as Exp does, with
// temporaries T1, T2; U is kept. A NaN in U gives a finite S (the callers
// multiply by U).
#define SIGMOID(U, S, T1, T2) \
	VXORPS       CSIGN, U, S; \
	VMINPS       C88, S, S; \
	VMAXPS       CM87, S, S; \
	VMULPS       CLOG2E, S, T1; \
	VROUNDPS     $0, T1, T1; \
	VFNMADD231PS CLN2HI, T1, S; \
	VFNMADD231PS CLN2LO, T1, S; \
	VMOVUPS      CP6, T2; \
	VFMADD213PS  CP5, S, T2; \
	VFMADD213PS  CP4, S, T2; \
	VFMADD213PS  CP3, S, T2; \
	VFMADD213PS  CP2, S, T2; \
	VFMADD213PS  CONE, S, T2; \
	VFMADD213PS  CONE, S, T2; \
	VCVTPS2DQ    T1, T1; \
	VPADDD       C127, T1, T1; \
	VPSLLD       $23, T1, T1; \
	VMULPS       T1, T2, T2; \
	VADDPS       CONE, T2, T2; \
	VMOVUPS      CONE, S; \
	VDIVPS       T2, S, S

// func affineAVX(dst, x *float32, rows, c int, scale, shift, mul, sig *float32, act int)
// dst = act(x*scale + shift) (* mul when mul is not nil), and with swish
// sig = sigmoid(x*scale + shift) when sig is not nil; c a multiple of 8.
TEXT ·affineAVX(SB), NOSPLIT, $0-72
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
	VXORPS Y15, Y15, Y15

arow:
	XORQ BX, BX

acol:
	VMOVUPS     (SI)(BX*1), Y0
	VMOVUPS     (R8)(BX*1), Y1
	VFMADD213PS (R9)(BX*1), Y1, Y0
	CMPQ        AX, $1
	JEQ         aswish
	CMPQ        AX, $2
	JNE         amul
	VMAXPS      Y0, Y15, Y0
	JMP         amul

aswish:
	SIGMOID(Y0, Y2, Y3, Y4)
	VMULPS Y2, Y0, Y0
	TESTQ  R12, R12
	JEQ    amul
	VMOVUPS Y2, (R12)(BX*1)

amul:
	TESTQ  R11, R11
	JEQ    astore
	VMULPS (R11)(BX*1), Y0, Y0

astore:
	VMOVUPS Y0, (DI)(BX*1)
	ADDQ    $32, BX
	CMPQ    BX, R10
	JLT     acol
	ADDQ    R10, SI
	ADDQ    R10, DI
	TESTQ   R12, R12
	JEQ     anext
	ADDQ    R10, R12

anext:
	DECQ    CX
	JNZ     arow
	VZEROUPPER
	RET

// func affineAddAVX(dst, x, add *float32, rows, c int, scale, shift *float32)
// dst = x*scale + shift + add.
TEXT ·affineAddAVX(SB), NOSPLIT, $0-56
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ add+16(FP), DX
	MOVQ rows+24(FP), CX
	MOVQ c+32(FP), R10
	SHLQ $2, R10
	MOVQ scale+40(FP), R8
	MOVQ shift+48(FP), R9

aarow:
	XORQ BX, BX

aacol:
	VMOVUPS     (SI)(BX*1), Y0
	VMOVUPS     (R8)(BX*1), Y1
	VFMADD213PS (R9)(BX*1), Y1, Y0
	VADDPS      (DX)(BX*1), Y0, Y0
	VMOVUPS     Y0, (DI)(BX*1)
	ADDQ        $32, BX
	CMPQ        BX, R10
	JLT         aacol
	ADDQ        R10, SI
	ADDQ        R10, DX
	ADDQ        R10, DI
	DECQ        CX
	JNZ         aarow
	VZEROUPPER
	RET

// func affine2AVX(dst, a, b *float32, rows, c int, ka, kb, k0 *float32)
// dst = ka*a + kb*b + k0.
TEXT ·affine2AVX(SB), NOSPLIT, $0-64
	MOVQ dst+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DX
	MOVQ rows+24(FP), CX
	MOVQ c+32(FP), R10
	SHLQ $2, R10
	MOVQ ka+40(FP), R8
	MOVQ kb+48(FP), R9
	MOVQ k0+56(FP), R11

a2row:
	XORQ BX, BX

a2col:
	VMOVUPS     (SI)(BX*1), Y0
	VMOVUPS     (R8)(BX*1), Y1
	VFMADD213PS (R11)(BX*1), Y1, Y0
	VMOVUPS     (DX)(BX*1), Y2
	VFMADD231PS (R9)(BX*1), Y2, Y0
	VMOVUPS     Y0, (DI)(BX*1)
	ADDQ        $32, BX
	CMPQ        BX, R10
	JLT         a2col
	ADDQ        R10, SI
	ADDQ        R10, DX
	ADDQ        R10, DI
	DECQ        CX
	JNZ         a2row
	VZEROUPPER
	RET

// func actGradAVX(dz, dy, x *float32, rows, c int, scale, shift, gmul, gadd, sig *float32, act int, sdz, sdzx *float32)
// g = dy*gmul + gadd (dy, gmul, gadd may be nil); u = x*scale + shift;
// dz = g*act'(u); sdz += column sums of dz; sdzx += column sums of dz*x.
// With swish, sig (unless nil) holds sigmoid(u).
TEXT ·actGradAVX(SB), NOSPLIT, $0-104
	MOVQ c+32(FP), R10
	SHLQ $2, R10
	MOVQ act+80(FP), AX
	VXORPS Y15, Y15, Y15
	XORQ BX, BX // column offset, bytes

gcol:
	MOVQ    dz+0(FP), DI
	MOVQ    dy+8(FP), DX
	MOVQ    x+16(FP), SI
	MOVQ    rows+24(FP), CX
	MOVQ    sig+72(FP), R11
	MOVQ    scale+40(FP), R8
	VMOVUPS (R8)(BX*1), Y8
	MOVQ    shift+48(FP), R8
	VMOVUPS (R8)(BX*1), Y9
	MOVQ    gmul+56(FP), R8
	VMOVUPS Y15, Y10
	TESTQ   R8, R8
	JEQ     gnomul
	VMOVUPS (R8)(BX*1), Y10

gnomul:
	MOVQ    gadd+64(FP), R9
	VMOVUPS Y15, Y11
	TESTQ   R9, R9
	JEQ     gnoadd
	VMOVUPS (R9)(BX*1), Y11

gnoadd:
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13

grow:
	VMOVUPS Y11, Y0
	TESTQ   DX, DX
	JEQ     gx
	VMOVUPS (DX)(BX*1), Y1
	TESTQ   R8, R8
	JEQ     gplain
	VFMADD231PS Y10, Y1, Y0
	JMP     gx

gplain:
	VADDPS Y1, Y0, Y0

gx:
	VMOVUPS     (SI)(BX*1), Y1
	VMOVAPS     Y1, Y2
	VFMADD213PS Y9, Y8, Y2
	CMPQ        AX, $1
	JEQ         gswish
	CMPQ        AX, $2
	JNE         gstore
	VCMPPS      $0x1e, Y15, Y2, Y5
	VANDPS      Y5, Y0, Y0
	JMP         gstore

gswish:
	TESTQ   R11, R11
	JEQ     gsigma
	VMOVUPS (R11)(BX*1), Y3
	JMP     gsigd

gsigma:
	SIGMOID(Y2, Y3, Y4, Y5)

gsigd:
	VMOVUPS     CONE, Y4
	VSUBPS      Y3, Y4, Y4
	VFMADD213PS CONE, Y2, Y4
	VMULPS      Y3, Y4, Y4
	VMULPS      Y4, Y0, Y0

gstore:
	VMOVUPS     Y0, (DI)(BX*1)
	VADDPS      Y0, Y12, Y12
	VFMADD231PS Y1, Y0, Y13
	ADDQ        R10, SI
	ADDQ        R10, DI
	TESTQ       DX, DX
	JEQ         gnsig
	ADDQ        R10, DX

gnsig:
	TESTQ R11, R11
	JEQ   gnext
	ADDQ  R10, R11

gnext:
	DECQ CX
	JNZ  grow
	MOVQ    sdz+88(FP), R9
	VADDPS  (R9)(BX*1), Y12, Y12
	VMOVUPS Y12, (R9)(BX*1)
	MOVQ    sdzx+96(FP), R9
	VADDPS  (R9)(BX*1), Y13, Y13
	VMOVUPS Y13, (R9)(BX*1)
	ADDQ    $32, BX
	CMPQ    BX, R10
	JLT     gcol
	VZEROUPPER
	RET

// func colStatsAVX(x *float32, rows, c int, sum, sq *float32)
// sum += column sums of x, sq += column sums of x*x.
TEXT ·colStatsAVX(SB), NOSPLIT, $0-40
	MOVQ c+16(FP), R10
	SHLQ $2, R10
	MOVQ sum+24(FP), R8
	MOVQ sq+32(FP), R9
	XORQ BX, BX

scol32:
	MOVQ R10, AX
	SUBQ BX, AX
	CMPQ AX, $128
	JLT  scol8
	MOVQ x+0(FP), SI
	ADDQ BX, SI
	MOVQ rows+8(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7

srow32:
	VMOVUPS     (SI), Y8
	VMOVUPS     32(SI), Y9
	VMOVUPS     64(SI), Y10
	VMOVUPS     96(SI), Y11
	VADDPS      Y8, Y0, Y0
	VADDPS      Y9, Y1, Y1
	VADDPS      Y10, Y2, Y2
	VADDPS      Y11, Y3, Y3
	VFMADD231PS Y8, Y8, Y4
	VFMADD231PS Y9, Y9, Y5
	VFMADD231PS Y10, Y10, Y6
	VFMADD231PS Y11, Y11, Y7
	ADDQ        R10, SI
	DECQ        CX
	JNZ         srow32
	VADDPS      (R8)(BX*1), Y0, Y0
	VADDPS      32(R8)(BX*1), Y1, Y1
	VADDPS      64(R8)(BX*1), Y2, Y2
	VADDPS      96(R8)(BX*1), Y3, Y3
	VMOVUPS     Y0, (R8)(BX*1)
	VMOVUPS     Y1, 32(R8)(BX*1)
	VMOVUPS     Y2, 64(R8)(BX*1)
	VMOVUPS     Y3, 96(R8)(BX*1)
	VADDPS      (R9)(BX*1), Y4, Y4
	VADDPS      32(R9)(BX*1), Y5, Y5
	VADDPS      64(R9)(BX*1), Y6, Y6
	VADDPS      96(R9)(BX*1), Y7, Y7
	VMOVUPS     Y4, (R9)(BX*1)
	VMOVUPS     Y5, 32(R9)(BX*1)
	VMOVUPS     Y6, 64(R9)(BX*1)
	VMOVUPS     Y7, 96(R9)(BX*1)
	ADDQ        $128, BX
	JMP         scol32

scol8:
	CMPQ BX, R10
	JGE  sdone
	MOVQ x+0(FP), SI
	ADDQ BX, SI
	MOVQ rows+8(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y4, Y4, Y4

srow8:
	VMOVUPS     (SI), Y8
	VADDPS      Y8, Y0, Y0
	VFMADD231PS Y8, Y8, Y4
	ADDQ        R10, SI
	DECQ        CX
	JNZ         srow8
	VADDPS      (R8)(BX*1), Y0, Y0
	VMOVUPS     Y0, (R8)(BX*1)
	VADDPS      (R9)(BX*1), Y4, Y4
	VMOVUPS     Y4, (R9)(BX*1)
	ADDQ        $32, BX
	JMP         scol8

sdone:
	VZEROUPPER
	RET

// func colDotAVX(a, b *float32, rows, c int, sum *float32)
// sum += column sums of a*b. With b == a it is not the sum of squares:
// colSumAVX passes b = nil for the plain column sums.
TEXT ·colDotAVX(SB), NOSPLIT, $0-40
	MOVQ c+24(FP), R10
	SHLQ $2, R10
	MOVQ sum+32(FP), R8
	XORQ BX, BX

dcol32:
	MOVQ R10, AX
	SUBQ BX, AX
	CMPQ AX, $128
	JLT  dcol8
	MOVQ a+0(FP), SI
	ADDQ BX, SI
	MOVQ b+8(FP), DX
	MOVQ rows+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	TESTQ DX, DX
	JEQ   dsum32
	ADDQ BX, DX

drow32:
	VMOVUPS     (SI), Y8
	VMOVUPS     32(SI), Y9
	VMOVUPS     64(SI), Y10
	VMOVUPS     96(SI), Y11
	VFMADD231PS (DX), Y8, Y0
	VFMADD231PS 32(DX), Y9, Y1
	VFMADD231PS 64(DX), Y10, Y2
	VFMADD231PS 96(DX), Y11, Y3
	ADDQ        R10, SI
	ADDQ        R10, DX
	DECQ        CX
	JNZ         drow32
	JMP         dstore32

dsum32:
	VADDPS (SI), Y0, Y0
	VADDPS 32(SI), Y1, Y1
	VADDPS 64(SI), Y2, Y2
	VADDPS 96(SI), Y3, Y3
	ADDQ   R10, SI
	DECQ   CX
	JNZ    dsum32

dstore32:
	VADDPS  (R8)(BX*1), Y0, Y0
	VADDPS  32(R8)(BX*1), Y1, Y1
	VADDPS  64(R8)(BX*1), Y2, Y2
	VADDPS  96(R8)(BX*1), Y3, Y3
	VMOVUPS Y0, (R8)(BX*1)
	VMOVUPS Y1, 32(R8)(BX*1)
	VMOVUPS Y2, 64(R8)(BX*1)
	VMOVUPS Y3, 96(R8)(BX*1)
	ADDQ    $128, BX
	JMP     dcol32

dcol8:
	CMPQ BX, R10
	JGE  ddone
	MOVQ a+0(FP), SI
	ADDQ BX, SI
	MOVQ b+8(FP), DX
	MOVQ rows+16(FP), CX
	VXORPS Y0, Y0, Y0
	TESTQ DX, DX
	JEQ   dsum8
	ADDQ BX, DX

drow8:
	VMOVUPS     (SI), Y8
	VFMADD231PS (DX), Y8, Y0
	ADDQ        R10, SI
	ADDQ        R10, DX
	DECQ        CX
	JNZ         drow8
	JMP         dstore8

dsum8:
	VADDPS (SI), Y0, Y0
	ADDQ   R10, SI
	DECQ   CX
	JNZ    dsum8

dstore8:
	VADDPS  (R8)(BX*1), Y0, Y0
	VMOVUPS Y0, (R8)(BX*1)
	ADDQ    $32, BX
	JMP     dcol8

ddone:
	VZEROUPPER
	RET

// func dwRunAVX(o, x, w *float32, c, n, ostep, xstep int, taps *int32, ntaps int, acc int)
// For i < n and j < c: o[i*ostep+j] (+)= sum over taps t of
// x[i*xstep+taps[2t]+j] * w[taps[2t+1]+j]. c a multiple of 8.
TEXT ·dwRunAVX(SB), NOSPLIT, $0-80
	MOVQ o+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ w+16(FP), DX
	MOVQ c+24(FP), R10
	SHLQ $2, R10
	MOVQ n+32(FP), CX
	MOVQ taps+56(FP), R8
	MOVQ ntaps+64(FP), R9

wpix:
	XORQ BX, BX // column offset, bytes

wcol32:
	MOVQ R10, AX
	SUBQ BX, AX
	CMPQ AX, $128
	JLT  wcol8
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	MOVQ acc+72(FP), AX
	TESTQ AX, AX
	JEQ  wtaps32
	VMOVUPS (DI)(BX*1), Y0
	VMOVUPS 32(DI)(BX*1), Y1
	VMOVUPS 64(DI)(BX*1), Y2
	VMOVUPS 96(DI)(BX*1), Y3

wtaps32:
	XORQ R11, R11

wtap32:
	CMPQ R11, R9
	JGE  wst32
	MOVLQSX (R8)(R11*8), R12
	MOVLQSX 4(R8)(R11*8), R13
	LEAQ    (SI)(R12*4), R12
	LEAQ    (DX)(R13*4), R13
	ADDQ    BX, R12
	ADDQ    BX, R13
	VMOVUPS     (R12), Y4
	VMOVUPS     32(R12), Y5
	VMOVUPS     64(R12), Y6
	VMOVUPS     96(R12), Y7
	VFMADD231PS (R13), Y4, Y0
	VFMADD231PS 32(R13), Y5, Y1
	VFMADD231PS 64(R13), Y6, Y2
	VFMADD231PS 96(R13), Y7, Y3
	INCQ R11
	JMP  wtap32

wst32:
	VMOVUPS Y0, (DI)(BX*1)
	VMOVUPS Y1, 32(DI)(BX*1)
	VMOVUPS Y2, 64(DI)(BX*1)
	VMOVUPS Y3, 96(DI)(BX*1)
	ADDQ    $128, BX
	JMP     wcol32

wcol8:
	CMPQ BX, R10
	JGE  wnext
	VXORPS Y0, Y0, Y0
	MOVQ acc+72(FP), AX
	TESTQ AX, AX
	JEQ  wtaps8
	VMOVUPS (DI)(BX*1), Y0

wtaps8:
	XORQ R11, R11

wtap8:
	CMPQ R11, R9
	JGE  wst8
	MOVLQSX (R8)(R11*8), R12
	MOVLQSX 4(R8)(R11*8), R13
	LEAQ    (SI)(R12*4), R12
	LEAQ    (DX)(R13*4), R13
	VMOVUPS     (R12)(BX*1), Y4
	VFMADD231PS (R13)(BX*1), Y4, Y0
	INCQ R11
	JMP  wtap8

wst8:
	VMOVUPS Y0, (DI)(BX*1)
	ADDQ    $32, BX
	JMP     wcol8

wnext:
	MOVQ ostep+40(FP), AX
	LEAQ (DI)(AX*4), DI
	MOVQ xstep+48(FP), AX
	LEAQ (SI)(AX*4), SI
	DECQ CX
	JNZ  wpix
	VZEROUPPER
	RET

// func dwGradRunAVX(grad, dy, x *float32, c, n, ostep, xstep int, taps *int32, ntaps int)
// For every tap t and j < c: grad[taps[2t+1]+j] += sum over i < n of
// dy[i*ostep+j] * x[i*xstep+taps[2t]+j]. c a multiple of 8.
TEXT ·dwGradRunAVX(SB), NOSPLIT, $0-72
	MOVQ c+24(FP), R10
	SHLQ $2, R10
	MOVQ ostep+40(FP), R9
	SHLQ $2, R9
	MOVQ taps+56(FP), R8
	XORQ BX, BX // column offset, bytes

ucol:
	CMPQ BX, R10
	JGE  udone
	XORQ R11, R11 // tap

utap:
	CMPQ R11, ntaps+64(FP)
	JGE  ucolnext
	MOVLQSX (R8)(R11*8), R12
	MOVQ    x+16(FP), SI
	LEAQ    (SI)(R12*4), SI
	ADDQ    BX, SI
	MOVQ    dy+8(FP), DX
	ADDQ    BX, DX
	MOVQ    n+32(FP), CX
	MOVQ    xstep+48(FP), R12
	SHLQ    $2, R12
	MOVQ    R10, AX
	SUBQ    BX, AX
	CMPQ    AX, $128
	JLT     u8
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

upix32:
	VMOVUPS     (DX), Y4
	VMOVUPS     32(DX), Y5
	VMOVUPS     64(DX), Y6
	VMOVUPS     96(DX), Y7
	VFMADD231PS (SI), Y4, Y0
	VFMADD231PS 32(SI), Y5, Y1
	VFMADD231PS 64(SI), Y6, Y2
	VFMADD231PS 96(SI), Y7, Y3
	ADDQ        R9, DX
	ADDQ        R12, SI
	DECQ        CX
	JNZ         upix32
	MOVLQSX 4(R8)(R11*8), R13
	MOVQ    grad+0(FP), DI
	LEAQ    (DI)(R13*4), DI
	ADDQ    BX, DI
	VADDPS  (DI), Y0, Y0
	VADDPS  32(DI), Y1, Y1
	VADDPS  64(DI), Y2, Y2
	VADDPS  96(DI), Y3, Y3
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	INCQ    R11
	JMP     utap

u8:
	VXORPS Y0, Y0, Y0

upix8:
	VMOVUPS     (DX), Y4
	VFMADD231PS (SI), Y4, Y0
	ADDQ        R9, DX
	ADDQ        R12, SI
	DECQ        CX
	JNZ         upix8
	MOVLQSX 4(R8)(R11*8), R13
	MOVQ    grad+0(FP), DI
	LEAQ    (DI)(R13*4), DI
	ADDQ    BX, DI
	VADDPS  (DI), Y0, Y0
	VMOVUPS Y0, (DI)
	INCQ    R11
	JMP     utap

ucolnext:
	MOVQ R10, AX
	SUBQ BX, AX
	CMPQ AX, $128
	JLT  unext8
	ADDQ $128, BX
	JMP  ucol

unext8:
	ADDQ $32, BX
	JMP  ucol

udone:
	VZEROUPPER
	RET
