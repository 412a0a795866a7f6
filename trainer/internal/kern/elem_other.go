//go:build !amd64 || purego

package kern

const useAsm = false

// Without assembly the kernels are the portable ones.
var (
	affineAsm    = affineGo
	affineAddAsm = affineAddGo
	affine2Asm   = affine2Go
	actGradAsm   = actGradGo
	colStatsAsm  = colStatsGo
	colSumAsm    = colSumGo
	colDotAsm    = colDotGo
	dwRunK       = dwRunGo
	dwGradRunK   = dwGradRunGo
)
