//go:build !amd64 || purego

package kern

const (
	fmaLoopFLOPs = 8 * 2
	peakISA      = "scalar"
)

func fmaLoop(n int) { fmaLoopGo(n) }
