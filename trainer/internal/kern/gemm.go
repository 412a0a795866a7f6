package kern

import "fmt"

//go:generate go run gen_amd64.go

// Blocking: C is computed in blocks of mc rows (the unit of work of a
// thread, and of GemmEpi's epilogue), the inner dimension in chunks of kc,
// and within them in tiles of at most tileR x tileW that one micro-kernel
// call keeps in registers.
const (
	mc = 96
	kc = 256
)

// Gemm computes C = A*B (C += A*B when acc is true) for row-major A
// (m x k, row stride lda), B (k x n, ldb) and C (m x n, ldc), using up to
// threads goroutines.
func Gemm(threads, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, acc bool) {
	GemmEpi(threads, m, n, k, a, lda, b, ldb, c, ldc, acc, nil)
}

// GemmEpi is Gemm that calls epi(t, i0, i1) as soon as rows [i0, i1) of C
// are final, while they are still in cache, on the goroutine t (0 <= t <
// threads) that computed them. Every row is passed to epi exactly once;
// the rows of one goroutine come in increasing order.
func GemmEpi(threads, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, acc bool, epi func(t, i0, i1 int)) {
	if m == 0 || n == 0 {
		return
	}
	checkGemm(m, n, k, len(a), lda, 1, len(b), ldb, len(c), ldc)
	if int64(m)*int64(n)*int64(k) < 1<<16 {
		threads = 1 // not worth a goroutine
	}
	// Blocks of mc rows, or smaller ones when there would be too few to
	// share evenly between the threads.
	bs := mc
	if threads > 1 {
		bs = min(mc, max(tileR, (m+4*threads-1)/(4*threads)))
	}
	blocks := (m + bs - 1) / bs
	Par(threads, blocks, func(t, lo, hi int) {
		for blk := lo; blk < hi; blk++ {
			i0, i1 := blk*bs, min((blk+1)*bs, m)
			gemmBlock(i0, i1, 0, n, k, a, lda, 1, b, ldb, c, ldc, acc)
			if epi != nil {
				epi(t, i0, i1)
			}
		}
	})
}

// GemmTN computes C = A^T*B (C += A^T*B when acc is true) for row-major A
// (k x m, row stride lda), B (k x n, ldb) and C (m x n, ldc): the weight
// gradient of a convolution, whose inner dimension k (pixels) is long. The
// threads split the larger of m and n, so each reads its share of the
// larger operand once and every element of C is summed in the same order
// whatever the number of threads.
func GemmTN(threads, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, acc bool) {
	if m == 0 || n == 0 {
		return
	}
	checkGemm(m, n, k, len(a), 1, lda, len(b), ldb, len(c), ldc)
	if int64(m)*int64(n)*int64(k) < 1<<16 {
		threads = 1
	}
	if m >= n {
		const step = 2 * tileR
		Par(threads, (m+step-1)/step, func(_, lo, hi int) {
			gemmBlock(lo*step, min(hi*step, m), 0, n, k, a, 1, lda, b, ldb, c, ldc, acc)
		})
		return
	}
	const step = tileW
	Par(threads, (n+step-1)/step, func(_, lo, hi int) {
		gemmBlock(0, m, lo*step, min(hi*step, n), k, a, 1, lda, b, ldb, c, ldc, acc)
	})
}

// checkGemm panics unless the slices hold the matrices: A(i, p) is
// a[i*ars+p*aks].
func checkGemm(m, n, k, la, ars, aks, lb, ldb, lc, ldc int) {
	if k > 0 && (la < (m-1)*ars+(k-1)*aks+1 || lb < (k-1)*ldb+n) || lc < (m-1)*ldc+n || n > ldb || n > ldc {
		panic(fmt.Sprintf("kern: Gemm %dx%dx%d: a %d (strides %d, %d), b %d (stride %d) or c %d (stride %d) too short",
			m, n, k, la, ars, aks, lb, ldb, lc, ldc))
	}
}

// gemmBlock computes rows [i0, i1) and columns [j0, j1) of C = A*B (+C)
// where A(i, p) is a[i*ars+p*aks].
func gemmBlock(i0, i1, j0, j1, k int, a []float32, ars, aks int, b []float32, ldb int, c []float32, ldc int, acc bool) {
	if k == 0 {
		if !acc {
			for i := i0; i < i1; i++ {
				clear(c[i*ldc+j0 : i*ldc+j1])
			}
		}
		return
	}
	// Rows in tiles of equal height: 16 rows are two tiles of 8, not 12
	// and 4.
	maxR := tileRows()
	tiles := (i1 - i0 + maxR - 1) / maxR
	th := (i1 - i0 + tiles - 1) / tiles
	// A panel of B that several row tiles read, with rows far apart, is
	// copied into contiguous memory first (its rows then share cache lines
	// and pages).
	if tiles >= 4 && ldb >= 256 {
		gemmPacked(i0, i1, j0, j1, k, th, a, ars, aks, b, ldb, c, ldc, acc)
		return
	}
	for p0 := 0; p0 < k; p0 += kc {
		kk := min(kc, k-p0)
		ac := acc || p0 > 0
		for j := j0; j < j1; {
			w := tileWidth(j1 - j)
			for i := i0; i < i1; i += th {
				r := min(th, i1-i)
				micro(r, w, kk, a[i*ars+p0*aks:], ars, aks, b[p0*ldb+j:], ldb, c[i*ldc+j:], ldc, ac)
			}
			j += w
		}
	}
}

// panels is a free list of the buffers gemmPacked copies panels of B
// into, one per GEMM running at once. A buffer on the stack would move to
// the heap (the assembly micro-kernels take its address) and make every
// call allocate 32 KiB: a training step's GEMMs left megabytes of garbage,
// which the garbage collector lets grow as large as the live heap before
// it collects them. (A sync.Pool would do, but under the race detector it
// drops buffers at random.)
var panels = make(chan *[kc * tileW]float32, 64)

func getPanel() *[kc * tileW]float32 {
	select {
	case buf := <-panels:
		return buf
	default:
		return new([kc * tileW]float32)
	}
}

func putPanel(buf *[kc * tileW]float32) {
	select {
	case panels <- buf:
	default: // 64 are kept: let it go
	}
}

// gemmPacked is gemmBlock with each kc x w panel of B copied to
// contiguous memory before the row tiles th rows high go over it.
func gemmPacked(i0, i1, j0, j1, k, th int, a []float32, ars, aks int, b []float32, ldb int, c []float32, ldc int, acc bool) {
	buf := getPanel()
	for p0 := 0; p0 < k; p0 += kc {
		kk := min(kc, k-p0)
		ac := acc || p0 > 0
		for j := j0; j < j1; {
			w := tileWidth(j1 - j)
			for p := 0; p < kk; p++ {
				copy(buf[p*w:p*w+w], b[(p0+p)*ldb+j:][:w])
			}
			for i := i0; i < i1; i += th {
				r := min(th, i1-i)
				micro(r, w, kk, a[i*ars+p0*aks:], ars, aks, buf[:kk*w], w, c[i*ldc+j:], ldc, ac)
			}
			j += w
		}
	}
	putPanel(buf)
}

// microGo computes the r x w tile C (+)= A*B over k, A(i, p) at
// a[i*ars+p*aks]: the portable micro-kernel (r <= tileR, w <= 32).
func microGo(r, w, k int, a []float32, ars, aks int, b []float32, ldb int, c []float32, ldc int, acc bool) {
	var t [32]float32
	for i := 0; i < r; i++ {
		ti := t[:w]
		clear(ti)
		ai := a[i*ars:]
		for p := 0; p < k; p++ {
			av := ai[p*aks]
			if av == 0 {
				continue
			}
			for j, bv := range b[p*ldb : p*ldb+w] {
				ti[j] += av * bv
			}
		}
		ci := c[i*ldc : i*ldc+w]
		if acc {
			for j, v := range ti {
				ci[j] += v
			}
		} else {
			copy(ci, ti)
		}
	}
}

// Transpose writes the transpose of the r x c row-major matrix src into dst
// (c x r), in cache-friendly tiles.
func Transpose(threads, r, c int, src, dst []float32) {
	const tile = 32
	src, dst = src[:r*c], dst[:r*c]
	tiles := (r + tile - 1) / tile
	if r*c < 1<<14 {
		threads = 1
	}
	Par(threads, tiles, func(_, lo, hi int) {
		for i0 := lo * tile; i0 < min(hi*tile, r); i0 += tile {
			i1 := min(i0+tile, r)
			for j0 := 0; j0 < c; j0 += tile {
				j1 := min(j0+tile, c)
				i := i0
				for ; i+4 <= i1; i += 4 {
					s0, s1, s2, s3 := src[i*c:][:c], src[(i+1)*c:][:c], src[(i+2)*c:][:c], src[(i+3)*c:][:c]
					for j := j0; j < j1; j++ {
						d := dst[j*r+i:][:4]
						d[0], d[1], d[2], d[3] = s0[j], s1[j], s2[j], s3[j]
					}
				}
				for ; i < i1; i++ {
					s := src[i*c:][:c]
					for j := j0; j < j1; j++ {
						dst[j*r+i] = s[j]
					}
				}
			}
		}
	})
}
