package kern

// Blocking of the GEMM: rows of A are split across threads in blocks of mc,
// the inner dimension in chunks of kc so that a kc x 16 panel of B stays in
// L1 while 4-row strips of A stream past it.
const (
	mc = 64
	kc = 256
)

// Gemm computes C = A*B (or C += A*B when acc is true) for row-major A
// (m x k, row stride lda), B (k x n, ldb) and C (m x n, ldc), using up to
// threads goroutines.
func Gemm(threads, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, acc bool) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		if !acc {
			for i := 0; i < m; i++ {
				clear(c[i*ldc : i*ldc+n])
			}
		}
		return
	}
	if len(a) < (m-1)*lda+k || len(b) < (k-1)*ldb+n || len(c) < (m-1)*ldc+n {
		panic("kern: Gemm slice too short")
	}
	blocks := (m + mc - 1) / mc
	// Small problems are not worth a goroutine.
	if int64(m)*int64(n)*int64(k) < 1<<15 {
		threads = 1
	}
	Par(threads, blocks, func(_, lo, hi int) {
		for blk := lo; blk < hi; blk++ {
			i0, i1 := blk*mc, min((blk+1)*mc, m)
			for p0 := 0; p0 < k; p0 += kc {
				p1 := min(p0+kc, k)
				gemmBlock(i0, i1, p0, p1, n, a, lda, b, ldb, c, ldc, acc || p0 > 0)
			}
		}
	})
}

// gemmBlock does rows [i0,i1) and inner indices [p0,p1) for all n columns.
func gemmBlock(i0, i1, p0, p1, n int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, acc bool) {
	kk := p1 - p0
	j := 0
	for ; j+16 <= n; j += 16 {
		i := i0
		for ; i+4 <= i1; i += 4 {
			kern4x16(kk, a[i*lda+p0:], lda, b[p0*ldb+j:], ldb, c[i*ldc+j:], ldc, acc)
		}
		if i < i1 {
			gemmGo(i, i1, p0, p1, j, j+16, a, lda, b, ldb, c, ldc, acc)
		}
	}
	for ; j+8 <= n; j += 8 {
		i := i0
		for ; i+4 <= i1; i += 4 {
			kern4x8(kk, a[i*lda+p0:], lda, b[p0*ldb+j:], ldb, c[i*ldc+j:], ldc, acc)
		}
		if i < i1 {
			gemmGo(i, i1, p0, p1, j, j+8, a, lda, b, ldb, c, ldc, acc)
		}
	}
	if j < n {
		gemmGo(i0, i1, p0, p1, j, n, a, lda, b, ldb, c, ldc, acc)
	}
}

// gemmGo is the portable kernel for a rectangle of C.
func gemmGo(i0, i1, p0, p1, j0, j1 int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, acc bool) {
	w := j1 - j0
	for i := i0; i < i1; i++ {
		ci := c[i*ldc+j0 : i*ldc+j1]
		if !acc {
			clear(ci)
		}
		ai := a[i*lda+p0 : i*lda+p1]
		for p, av := range ai {
			if av == 0 {
				continue
			}
			bp := b[(p0+p)*ldb+j0 : (p0+p)*ldb+j0+w]
			for j, bv := range bp {
				ci[j] += av * bv
			}
		}
	}
}

// kern4x16Go and kern4x8Go are the pure Go versions of the register-blocked
// micro-kernels, used where there is no assembly.
func kern4x16Go(k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, acc bool) {
	kernGo(4, 16, k, a, lda, b, ldb, c, ldc, acc)
}

func kern4x8Go(k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, acc bool) {
	kernGo(4, 8, k, a, lda, b, ldb, c, ldc, acc)
}

func kernGo(rows, cols, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, acc bool) {
	var t [4][16]float32
	for p := 0; p < k; p++ {
		bp := b[p*ldb : p*ldb+cols]
		for r := 0; r < rows; r++ {
			av := a[r*lda+p]
			tr := t[r][:cols]
			for j, bv := range bp {
				tr[j] += av * bv
			}
		}
	}
	for r := 0; r < rows; r++ {
		cr := c[r*ldc : r*ldc+cols]
		if acc {
			for j := range cr {
				cr[j] += t[r][j]
			}
		} else {
			copy(cr, t[r][:cols])
		}
	}
}

// Transpose writes the transpose of the r x c row-major matrix src into dst
// (c x r), in cache-friendly tiles.
func Transpose(threads, r, c int, src, dst []float32) {
	const tile = 32
	tiles := (r + tile - 1) / tile
	if r*c < 1<<14 {
		threads = 1
	}
	Par(threads, tiles, func(_, lo, hi int) {
		for i0 := lo * tile; i0 < min(hi*tile, r); i0 += tile {
			i1 := min(i0+tile, r)
			for j0 := 0; j0 < c; j0 += tile {
				j1 := min(j0+tile, c)
				for i := i0; i < i1; i++ {
					s := src[i*c : i*c+c]
					for j := j0; j < j1; j++ {
						dst[j*r+i] = s[j]
					}
				}
			}
		}
	})
}
