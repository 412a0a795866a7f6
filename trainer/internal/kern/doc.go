// Package kern holds the float32 compute kernels of the trainer: a blocked
// GEMM (AVX2/FMA assembly on amd64, pure Go elsewhere) and a tiny fork-join
// helper that splits work over a fixed number of goroutines.
package kern
