//go:build !amd64 || purego

package kern

// Tiles of the portable micro-kernel.
const (
	tileR = 4
	tileW = 32
)

func tileWidth(n int) int { return min(n, tileW) }

func tileRows() int { return tileR }

func micro(r, w, k int, a []float32, ars, aks int, b []float32, ldb int, c []float32, ldc int, acc bool) {
	microGo(r, w, k, a, ars, aks, b, ldb, c, ldc, acc)
}
