//go:build amd64 && !purego

package kern

import "golang.org/x/sys/cpu"

var useAsm = cpu.X86.HasAVX2 && cpu.X86.HasFMA

//go:noescape
func kern4x16AVX(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, acc bool)

//go:noescape
func kern4x8AVX(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, acc bool)

func kern4x16(k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, acc bool) {
	if !useAsm {
		kern4x16Go(k, a, lda, b, ldb, c, ldc, acc)
		return
	}
	// Bounds the assembly relies on.
	_ = a[3*lda+k-1]
	_ = b[(k-1)*ldb+15]
	_ = c[3*ldc+15]
	kern4x16AVX(k, &a[0], lda, &b[0], ldb, &c[0], ldc, acc)
}

func kern4x8(k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, acc bool) {
	if !useAsm {
		kern4x8Go(k, a, lda, b, ldb, c, ldc, acc)
		return
	}
	_ = a[3*lda+k-1]
	_ = b[(k-1)*ldb+7]
	_ = c[3*ldc+7]
	kern4x8AVX(k, &a[0], lda, &b[0], ldb, &c[0], ldc, acc)
}
