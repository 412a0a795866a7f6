//go:build amd64 && !purego

package kern

import "golang.org/x/sys/cpu"

var (
	hasAVX512    = cpu.X86.HasAVX512F
	fmaLoopFLOPs = float64(10 * 2 * 8)
	peakISA      = "scalar"
)

//go:noescape
func fmaLoop256(n int)

//go:noescape
func fmaLoop512(n int)

func init() {
	switch {
	case hasAVX512:
		fmaLoopFLOPs, peakISA = 10*2*16, "AVX-512 FMA"
	case useAsm:
		fmaLoopFLOPs, peakISA = 10*2*8, "AVX2 FMA"
	default:
		fmaLoopFLOPs, peakISA = 8*2, "scalar"
	}
}

// fmaLoop runs n iterations of fmaLoopFLOPs floating-point operations.
func fmaLoop(n int) {
	switch {
	case hasAVX512:
		fmaLoop512(n)
	case useAsm:
		fmaLoop256(n)
	default:
		fmaLoopGo(n)
	}
}
