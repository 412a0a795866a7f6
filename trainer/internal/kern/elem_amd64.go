//go:build amd64 && !purego

package kern

import "unsafe"

//go:noescape
func affineAVX(dst, x *float32, rows, c int, scale, shift, mul, sig *float32, act int)

//go:noescape
func affine512(dst, x *float32, rows, c int, scale, shift, mul, sig *float32, act int)

//go:noescape
func affineAddAVX(dst, x, add *float32, rows, c int, scale, shift *float32)

//go:noescape
func affine2AVX(dst, a, b *float32, rows, c int, ka, kb, k0 *float32)

//go:noescape
func actGradAVX(dz, dy, x *float32, rows, c int, scale, shift, gmul, gadd, sig *float32, act int, sdz, sdzx *float32)

//go:noescape
func actGrad512(dz, dy, x *float32, rows, c int, scale, shift, gmul, gadd, sig *float32, act int, sdz, sdzx *float32)

//go:noescape
func colStatsAVX(x *float32, rows, c int, sum, sq *float32)

//go:noescape
func colDotAVX(a, b *float32, rows, c int, sum *float32)

//go:noescape
func dwRunAVX(o, x, w *float32, c, n, ostep, xstep int, taps *int32, ntaps int, acc int)

//go:noescape
func dwRun512(o, x, w *float32, c, n, ostep, xstep int, taps *int32, ntaps int, acc int)

//go:noescape
func dwGradRun512(grad, dy, x *float32, c, n, ostep, xstep int, taps *int32, ntaps int)

//go:noescape
func dwGradRunAVX(grad, dy, x *float32, c, n, ostep, xstep int, taps *int32, ntaps int)

// ptr is the address of s[0], or nil for an empty or nil slice.
func ptr(s []float32) *float32 {
	if len(s) == 0 {
		return nil
	}
	return unsafe.SliceData(s)
}

// The wrappers below are called with slices the exported kernels have
// cut to length, c a multiple of 8 and rows >= 1.

func affineAsm(dst, x []float32, rows, c int, scale, shift []float32, act Act, mul, sig []float32) {
	if use512 {
		affine512(&dst[0], &x[0], rows, c, &scale[0], &shift[0], ptr(mul), ptr(sig), int(act))
		return
	}
	affineAVX(&dst[0], &x[0], rows, c, &scale[0], &shift[0], ptr(mul), ptr(sig), int(act))
}

func affineAddAsm(dst, x, add []float32, rows, c int, scale, shift []float32) {
	affineAddAVX(&dst[0], &x[0], &add[0], rows, c, &scale[0], &shift[0])
}

func affine2Asm(dst, a, b []float32, rows, c int, ka, kb, k0 []float32) {
	affine2AVX(&dst[0], &a[0], &b[0], rows, c, &ka[0], &kb[0], &k0[0])
}

func actGradAsm(dz, dy, x []float32, rows, c int, scale, shift, gmul, gadd []float32, act Act, sig, sdz, sdzx []float32) {
	if use512 {
		actGrad512(&dz[0], ptr(dy), &x[0], rows, c, &scale[0], &shift[0], ptr(gmul), ptr(gadd), ptr(sig), int(act), &sdz[0], &sdzx[0])
		return
	}
	actGradAVX(&dz[0], ptr(dy), &x[0], rows, c, &scale[0], &shift[0], ptr(gmul), ptr(gadd), ptr(sig), int(act), &sdz[0], &sdzx[0])
}

func colStatsAsm(x []float32, rows, c int, sum, sq []float32) {
	colStatsAVX(&x[0], rows, c, &sum[0], &sq[0])
}

func colSumAsm(x []float32, rows, c int, sum []float32) {
	colDotAVX(&x[0], nil, rows, c, &sum[0])
}

func colDotAsm(a, b []float32, rows, c int, sum []float32) {
	colDotAVX(&a[0], &b[0], rows, c, &sum[0])
}

// dwRunK and dwGradRunK are dwRunGo and dwGradRunGo, in assembly when c
// is a multiple of 8. The plan guarantees the offsets are in bounds.
func dwRunK(o, x, w []float32, c, n, ostep, xstep int, taps []int32, acc bool) {
	if !useAsm || c%8 != 0 {
		dwRunGo(o, x, w, c, n, ostep, xstep, taps, acc)
		return
	}
	a := 0
	if acc {
		a = 1
	}
	var t *int32
	if len(taps) > 0 {
		t = &taps[0]
	}
	if use512 {
		dwRun512(&o[0], &x[0], &w[0], c, n, ostep, xstep, t, len(taps)/2, a)
		return
	}
	dwRunAVX(&o[0], &x[0], &w[0], c, n, ostep, xstep, t, len(taps)/2, a)
}

func dwGradRunK(g, dy, x []float32, c, n, ostep, xstep int, taps []int32) {
	if len(taps) == 0 {
		return
	}
	if !useAsm || c%8 != 0 {
		dwGradRunGo(g, dy, x, c, n, ostep, xstep, taps)
		return
	}
	if use512 {
		dwGradRun512(&g[0], &dy[0], &x[0], c, n, ostep, xstep, &taps[0], len(taps)/2)
		return
	}
	dwGradRunAVX(&g[0], &dy[0], &x[0], c, n, ostep, xstep, &taps[0], len(taps)/2)
}
