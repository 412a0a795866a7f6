package kern

import (
	"math"
	"math/rand/v2"
	"testing"
)

func naive(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, acc bool) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for p := 0; p < k; p++ {
				s += float64(a[i*lda+p]) * float64(b[p*ldb+j])
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

func TestGemm(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	cases := []struct{ m, n, k, pad int }{
		{1, 1, 1, 0}, {4, 16, 3, 0}, {5, 17, 9, 1}, {64, 24, 16, 0}, {130, 40, 300, 3},
		{7, 8, 513, 0}, {256, 96, 16, 2}, {3, 5, 0, 0}, {100, 10, 160, 0},
	}
	for _, tc := range cases {
		for _, acc := range []bool{false, true} {
			for _, threads := range []int{1, 2, 3} {
				lda, ldb, ldc := tc.k+tc.pad, tc.n+tc.pad, tc.n+2*tc.pad
				a := randSlice(r, tc.m*lda)
				b := randSlice(r, max(tc.k, 1)*ldb)
				c := randSlice(r, tc.m*ldc)
				want := append([]float32(nil), c...)
				naive(tc.m, tc.n, tc.k, a, lda, b, ldb, want, ldc, acc)
				Gemm(threads, tc.m, tc.n, tc.k, a, lda, b, ldb, c, ldc, acc)
				for i := 0; i < tc.m; i++ {
					for j := 0; j < tc.n; j++ {
						g, w := c[i*ldc+j], want[i*ldc+j]
						if math.Abs(float64(g-w)) > 1e-3*(1+math.Abs(float64(w))) {
							t.Fatalf("%+v acc=%v threads=%d: C[%d,%d] = %g, want %g", tc, acc, threads, i, j, g, w)
						}
					}
				}
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

func BenchmarkGemm(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, sz := range []struct {
		name    string
		m, n, k int
		threads int
	}{
		{"expand_16384x96x16_t1", 16384, 96, 16, 1},
		{"project_4096x40x144_t1", 4096, 40, 144, 1},
		{"head_64x640x160_t1", 1024, 640, 160, 1},
		{"head_64x640x160_t2", 1024, 640, 160, 2},
		{"dw_96x16x16384_t2", 96, 16, 16384, 2},
	} {
		a := randSlice(r, sz.m*sz.k)
		bb := randSlice(r, sz.k*sz.n)
		c := make([]float32, sz.m*sz.n)
		b.Run(sz.name, func(b *testing.B) {
			for b.Loop() {
				Gemm(sz.threads, sz.m, sz.n, sz.k, a, sz.k, bb, sz.n, c, sz.n, false)
			}
			b.ReportMetric(2*float64(sz.m*sz.n*sz.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
