//go:build amd64 && !purego

package kern

import "golang.org/x/sys/cpu"

// useAsm: the AVX2/FMA kernels run; use512: the AVX-512 GEMM kernels too.
var (
	useAsm = cpu.X86.HasAVX2 && cpu.X86.HasFMA
	use512 = useAsm && cpu.X86.HasAVX512F
)

// Largest tiles of the micro-kernels: 12 x 32 with AVX-512, 6 x 16 with
// AVX2 (the driver splits a 12-row tile in two).
const (
	tileR = 12
	tileW = 32
)

// A microKernel computes an r x w tile C (+)= A*B over k; see gen_amd64.go.
type microKernel func(k int, a *float32, ars, aks int, b *float32, ldb int, c *float32, ldc int, acc int, mask int)

// tileRows returns the height of the largest tile of the kernels in use.
func tileRows() int {
	switch {
	case use512:
		return 12
	case useAsm:
		return 6
	}
	return 4
}

// tileWidth returns the width of the next tile of n remaining columns.
func tileWidth(n int) int {
	switch {
	case use512:
		return min(n, 32)
	case useAsm && n >= 16:
		return 16
	case useAsm && n >= 8:
		return 8
	}
	return min(n, tileW)
}

func micro(r, w, k int, a []float32, ars, aks int, b []float32, ldb int, c []float32, ldc int, acc bool) {
	ac := 0
	if acc {
		ac = 1
	}
	switch {
	case use512:
		// Bounds the kernel relies on; B's last vector is masked.
		_ = a[(r-1)*ars+(k-1)*aks]
		_ = b[(k-1)*ldb+w-1]
		_ = c[(r-1)*ldc+w-1]
		if w > 16 {
			k512w32[r](k, &a[0], ars, aks, &b[0], ldb, &c[0], ldc, ac, 1<<(w-16)-1)
		} else {
			k512w16[r](k, &a[0], ars, aks, &b[0], ldb, &c[0], ldc, ac, 1<<w-1)
		}
	case useAsm && w >= 8:
		for r > 0 {
			rr := min(r, 6)
			_ = a[(rr-1)*ars+(k-1)*aks]
			_ = b[(k-1)*ldb+w-1]
			_ = c[(rr-1)*ldc+w-1]
			if w == 16 {
				k256w16[rr](k, &a[0], ars, aks, &b[0], ldb, &c[0], ldc, ac, 0)
			} else {
				k256w8[rr](k, &a[0], ars, aks, &b[0], ldb, &c[0], ldc, ac, 0)
			}
			r -= rr
			if r > 0 {
				a, c = a[rr*ars:], c[rr*ldc:]
			}
		}
	default:
		microGo(r, w, k, a, ars, aks, b, ldb, c, ldc, acc)
	}
}
