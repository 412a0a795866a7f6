package kern

import (
	"math"
	"testing"
)

func TestExp(t *testing.T) {
	for x := float32(-80); x < 80; x += 0.0137 {
		got, want := float64(Exp(x)), math.Exp(float64(x))
		if math.Abs(got-want) > 1e-6*want {
			t.Fatalf("Exp(%g) = %g, want %g", x, got, want)
		}
	}
	if e := Exp(-1000); e < 0 || e > 1e-37 {
		t.Errorf("Exp(-1000) = %g, want about 0", e)
	}
	if e := Exp(1000); math.IsInf(float64(e), 0) || e < 1e38 {
		t.Errorf("Exp(1000) = %g, want a large finite value", e)
	}
}

func TestVectorKernels(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 9, 31, 100} {
		src := make([]float32, n)
		a := make([]float32, n)
		dst := make([]float32, n)
		for i := range src {
			src[i] = float32(i%23)*1.7 - 19
			a[i] = float32(i%5) - 2
			dst[i] = float32(i)
		}
		sig := make([]float32, n)
		Sigmoid(sig, src)
		MulAdd(dst, a, src)
		for i := range src {
			want := 1 / (1 + math.Exp(-float64(src[i])))
			if math.Abs(float64(sig[i])-want) > 1e-6 {
				t.Fatalf("n=%d: Sigmoid(%g) = %g, want %g", n, src[i], sig[i], want)
			}
			if w := float32(i) + a[i]*src[i]; dst[i] != w {
				t.Fatalf("n=%d: MulAdd[%d] = %g, want %g", n, i, dst[i], w)
			}
		}
	}
	// Extremes stay finite and in [0, 1].
	s := []float32{-1e6, 1e6, -100, 100, 0, 0, 0, 0}
	Sigmoid(s, s)
	if s[0] < 0 || s[0] > 1e-30 || s[1] != 1 || s[4] != 0.5 {
		t.Errorf("Sigmoid extremes = %v", s)
	}
}
