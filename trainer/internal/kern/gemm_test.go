package kern

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

// naiveGemm is C = op(A)*B (+C) in float64, the reference of the tests;
// A(i, p) is a[i*ars+p*aks].
func naiveGemm(m, n, k int, a []float32, ars, aks int, b []float32, ldb int, c []float32, ldc int, acc bool) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for p := 0; p < k; p++ {
				s += float64(a[i*ars+p*aks]) * float64(b[p*ldb+j])
			}
			if acc {
				s += float64(c[i*ldc+j])
			}
			c[i*ldc+j] = float32(s)
		}
	}
}

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// closeTo reports the first element of got more than tol*(1+|want|) from want.
func closeTo(got, want []float32, tol float64) error {
	for i := range want {
		g, w := float64(got[i]), float64(want[i])
		if !(math.Abs(g-w) <= tol*(1+math.Abs(w))) {
			return fmt.Errorf("[%d] = %g, want %g", i, g, w)
		}
	}
	return nil
}

var gemmCases = []struct{ m, n, k, pad int }{
	{1, 1, 1, 0}, {4, 16, 3, 0}, {5, 17, 9, 1}, {64, 24, 16, 0}, {130, 40, 300, 3},
	{7, 8, 513, 0}, {256, 96, 16, 2}, {3, 5, 0, 0}, {100, 10, 160, 0}, {13, 33, 7, 1},
	{97, 49, 40, 0}, {12, 32, 600, 0}, {200, 7, 31, 2}, {25, 150, 5, 0},
}

// TestGemm checks Gemm, GemmEpi and GemmTN against naiveGemm on every
// kernel path this machine has (pure Go, AVX2, AVX-512), odd shapes and
// strides, with and without accumulation, on 1 to 3 threads.
func TestGemm(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, mode := range ISAs() {
		restore := UseISA(mode)
		for _, tc := range gemmCases {
			for _, acc := range []bool{false, true} {
				for _, threads := range []int{1, 2, 3} {
					name := fmt.Sprintf("%s %+v acc=%v threads=%d", mode, tc, acc, threads)
					lda, ldb, ldc := tc.k+tc.pad, tc.n+tc.pad, tc.n+2*tc.pad
					a := randSlice(r, tc.m*lda)
					b := randSlice(r, max(tc.k, 1)*ldb)
					c := randSlice(r, tc.m*ldc)
					want := append([]float32(nil), c...)
					naiveGemm(tc.m, tc.n, tc.k, a, lda, 1, b, ldb, want, ldc, acc)
					seen := make([]int, tc.m)
					GemmEpi(threads, tc.m, tc.n, tc.k, a, lda, b, ldb, c, ldc, acc, func(_, i0, i1 int) {
						for i := i0; i < i1; i++ {
							seen[i]++
						}
					})
					if err := closeTo(c, want, 1e-4); err != nil {
						t.Fatalf("Gemm %s: C%v", name, err)
					}
					for i, s := range seen {
						if s != 1 && tc.n > 0 {
							t.Fatalf("GemmEpi %s: row %d passed to the epilogue %d times", name, i, s)
						}
					}
					// A^T: A is k x m with row stride lda2.
					lda2 := tc.m + tc.pad
					at := randSlice(r, max(tc.k, 1)*lda2)
					c = randSlice(r, tc.m*ldc)
					want = append(want[:0], c...)
					naiveGemm(tc.m, tc.n, tc.k, at, 1, lda2, b, ldb, want, ldc, acc)
					GemmTN(threads, tc.m, tc.n, tc.k, at, lda2, b, ldb, c, ldc, acc)
					if err := closeTo(c, want, 1e-4); err != nil {
						t.Fatalf("GemmTN %s: C%v", name, err)
					}
				}
			}
		}
		restore()
	}
}

// TestGemmTNThreadsAgree: GemmTN gives bit-identical results on any
// number of threads.
func TestGemmTNThreadsAgree(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, sz := range [][3]int{{16, 96, 5000}, {200, 24, 700}} {
		m, n, k := sz[0], sz[1], sz[2]
		a, b := randSlice(r, k*m), randSlice(r, k*n)
		c1, c3 := make([]float32, m*n), make([]float32, m*n)
		GemmTN(1, m, n, k, a, m, b, n, c1, n, false)
		GemmTN(3, m, n, k, a, m, b, n, c3, n, false)
		for i := range c1 {
			if c1[i] != c3[i] {
				t.Fatalf("%v: C[%d] = %g on 1 thread, %g on 3", sz, i, c1[i], c3[i])
			}
		}
	}
}

func TestTranspose(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, sz := range [][2]int{{1, 1}, {3, 70}, {65, 33}, {200, 300}} {
		src := randSlice(r, sz[0]*sz[1])
		dst := make([]float32, len(src))
		Transpose(2, sz[0], sz[1], src, dst)
		for i := 0; i < sz[0]; i++ {
			for j := 0; j < sz[1]; j++ {
				if dst[j*sz[0]+i] != src[i*sz[1]+j] {
					t.Fatalf("%v: dst[%d,%d] wrong", sz, j, i)
				}
			}
		}
	}
}

// TestGemmGarbage: a GEMM whose B panels are packed (B has over 256
// columns and the rows make 4 tiles or more) leaves no buffer behind for
// the garbage collector, on every kernel path: under 1 KiB a call (the
// closures of its goroutines), where the 32 KiB panel used to move to the
// heap on every call.
func TestGemmGarbage(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const m, n, k = 384, 300, 32
	a, b, c := randSlice(r, m*k), randSlice(r, k*n), make([]float32, m*n)
	for _, mode := range ISAs() {
		restore := UseISA(mode)
		for _, threads := range []int{1, 2} {
			Gemm(threads, m, n, k, a, k, b, n, c, n, false) // fills the free list
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			const calls = 5
			for range calls {
				Gemm(threads, m, n, k, a, k, b, n, c, n, false)
			}
			runtime.ReadMemStats(&after)
			if per := (after.TotalAlloc - before.TotalAlloc) / calls; per > 1024 {
				t.Errorf("%s, %d threads: a %dx%dx%d GEMM leaves %d bytes of garbage; want under 1 KiB", mode, threads, m, n, k, per)
			}
		}
		restore()
	}
}

// BenchmarkGemm times the GEMMs of an MBConv block of B0 at width 1.0,
// 64x64 (the second stage: 16 -> 96 -> 24 channels, 32x32 -> 16x16) on one
// thread, on chunks of images as the block layer runs them: the expansion
// (the whole batch), the projection, its input gradient and weight
// gradient, and the expansion's weight and input gradients.
func BenchmarkGemm(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, sz := range []struct {
		name    string
		m, n, k int
		tn      bool
	}{
		{"expand_65536x96x16", 65536, 96, 16, false},
		{"project_1024x24x96", 1024, 24, 96, false},
		{"project_dx_1024x96x24", 1024, 96, 24, false},
		{"project_dW_96x24x1024", 96, 24, 1024, true},
		{"expand_dW_16x96x1024", 16, 96, 1024, true},
		{"expand_dx_1024x16x96", 1024, 16, 96, false},
		{"late_project_256x320x1152", 256, 320, 1152, false},
		{"head_256x1280x320", 256, 1280, 320, false},
	} {
		for _, mode := range ISAs() {
			a := randSlice(r, sz.m*sz.k)
			bb := randSlice(r, sz.k*sz.n)
			c := make([]float32, sz.m*sz.n)
			b.Run(sz.name+"/"+mode, func(b *testing.B) {
				defer UseISA(mode)()
				for b.Loop() {
					if sz.tn {
						GemmTN(1, sz.m, sz.n, sz.k, a, sz.m, bb, sz.n, c, sz.n, false)
					} else {
						Gemm(1, sz.m, sz.n, sz.k, a, sz.k, bb, sz.n, c, sz.n, false)
					}
				}
				b.ReportMetric(2*float64(sz.m*sz.n*sz.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
