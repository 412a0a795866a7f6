//go:build !amd64 || purego

package kern

const useAsm = false

func kern4x16(k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, acc bool) {
	kern4x16Go(k, a, lda, b, ldb, c, ldc, acc)
}

func kern4x8(k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, acc bool) {
	kern4x8Go(k, a, lda, b, ldb, c, ldc, acc)
}
