package kern

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// naiveDW is a depthwise convolution written out directly in float64.
func naiveDW(h, w, c, k, s, ho, wo, pt, pl int, x, f []float32) []float32 {
	out := make([]float32, ho*wo*c)
	for oh := 0; oh < ho; oh++ {
		for ow := 0; ow < wo; ow++ {
			for ch := 0; ch < c; ch++ {
				var sum float64
				for kh := 0; kh < k; kh++ {
					for kw := 0; kw < k; kw++ {
						ih, iw := oh*s-pt+kh, ow*s-pl+kw
						if ih >= 0 && ih < h && iw >= 0 && iw < w {
							sum += float64(x[(ih*w+iw)*c+ch]) * float64(f[(kh*k+kw)*c+ch])
						}
					}
				}
				out[(oh*wo+ow)*c+ch] = float32(sum)
			}
		}
	}
	return out
}

// TestDW checks the depthwise convolution and both of its gradients against
// the direct definition, for every kernel size and stride, odd sizes and
// paddings, on each kernel path. The gradients are checked through the
// identity <dy, conv(x, f)> = <dx, x> = <df, f>, which holds for the
// exact gradients of a bilinear map.
func TestDW(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	type tc struct{ h, w, c, k, s, pt, pl int }
	var cases []tc
	for _, k := range []int{1, 3, 5, 7} {
		for _, s := range []int{1, 2, 3} {
			for _, hw := range [][2]int{{1, 1}, {2, 3}, {5, 5}, {8, 7}, {9, 12}} {
				for _, c := range []int{1, 3, 8, 24, 40, 72} {
					ho, wo := (hw[0]+s-1)/s, (hw[1]+s-1)/s
					pt := max((ho-1)*s+k-hw[0], 0) / 2
					pl := max((wo-1)*s+k-hw[1], 0) / 2
					cases = append(cases, tc{hw[0], hw[1], c, k, s, pt, pl})
				}
			}
		}
	}
	cases = append(cases, tc{6, 6, 16, 3, 1, 0, 0}, tc{6, 6, 16, 3, 2, 2, 1}) // other paddings
	for _, mode := range ISAs() {
		restore := UseISA(mode)
		for _, c := range cases {
			ho, wo := (c.h+c.s-1)/c.s, (c.w+c.s-1)/c.s
			name := fmt.Sprintf("%s %+v", mode, c)
			d := NewDW(c.h, c.w, c.c, c.k, c.s, ho, wo, c.pt, c.pl)
			x := randSlice(r, c.h*c.w*c.c)
			f := randSlice(r, c.k*c.k*c.c)
			want := naiveDW(c.h, c.w, c.c, c.k, c.s, ho, wo, c.pt, c.pl, x, f)
			got := randSlice(r, len(want))
			d.Forward(got, x, f)
			if err := closeTo(got, want, 1e-5); err != nil {
				t.Fatalf("Forward %s: %v", name, err)
			}
			dy := randSlice(r, len(want))
			var yy float64 // <dy, conv(x, f)>
			for i, v := range want {
				yy += float64(v) * float64(dy[i])
			}
			dx := randSlice(r, len(x))
			base := append([]float32(nil), dx...)
			d.BackwardData(dx, dy, f, true)
			var xx float64
			for i := range dx {
				xx += float64(dx[i]-base[i]) * float64(x[i])
			}
			d.BackwardData(dx, dy, f, false)
			var xx2 float64
			for i := range dx {
				xx2 += float64(dx[i]) * float64(x[i])
			}
			df := make([]float32, len(f))
			for i := range df {
				df[i] = 1
			}
			d.BackwardFilter(df, dy, x)
			var ff float64
			for i := range df {
				ff += float64(df[i]-1) * float64(f[i])
			}
			tol := 1e-4 * (1 + abs(yy))
			if abs(xx-yy) > tol || abs(xx2-yy) > tol || abs(ff-yy) > tol {
				t.Fatalf("%s: <dy,y> = %g, <dx,x> = %g (accumulated) %g, <df,f> = %g", name, yy, xx, xx2, ff)
			}
			// The input gradient is the transpose: check it element by element
			// too, against finite sums of unit vectors' responses.
			for _, i := range r.Perm(len(x))[:min(5, len(x))] {
				e := make([]float32, len(x))
				e[i] = 1
				ye := naiveDW(c.h, c.w, c.c, c.k, c.s, ho, wo, c.pt, c.pl, e, f)
				var w float64
				for j, v := range ye {
					w += float64(v) * float64(dy[j])
				}
				if abs(float64(dx[i])-w) > 1e-4*(1+abs(w)) {
					t.Fatalf("BackwardData %s: dx[%d] = %g, want %g", name, i, dx[i], w)
				}
			}
		}
		restore()
	}
}

func abs(v float64) float64 { return max(v, -v) }

// naiveDWFilterGrad is the gradient of a depthwise convolution's filter
// (K*K, C), written out directly in float64: every tap of every channel sums
// dy times the input pixel that tap saw, over the outputs.
func naiveDWFilterGrad(h, w, c, k, s, ho, wo, pt, pl int, x, dy []float32) []float64 {
	g := make([]float64, k*k*c)
	for oh := 0; oh < ho; oh++ {
		for ow := 0; ow < wo; ow++ {
			for kh := 0; kh < k; kh++ {
				for kw := 0; kw < k; kw++ {
					ih, iw := oh*s-pt+kh, ow*s-pl+kw
					if ih < 0 || ih >= h || iw < 0 || iw >= w {
						continue
					}
					for ch := 0; ch < c; ch++ {
						g[(kh*k+kw)*c+ch] += float64(dy[(oh*wo+ow)*c+ch]) * float64(x[(ih*w+iw)*c+ch])
					}
				}
			}
		}
	}
	return g
}

// TestDWBackwardFilter checks every element of the filter gradient against
// naiveDWFilterGrad, on each kernel path: kernels 3 and 5, strides 1 and 2,
// "same" and other paddings, images smaller than the kernel, and channels
// that are not a multiple of the vector width (3 and 12 take the portable
// loop everywhere; 24, 40, 72 and 136 leave 8-wide tails after the AVX2
// path's 32-channel and the AVX-512 path's 64- and 16-channel blocks).
// BackwardFilter adds to what dw holds, so dw starts random. An element
// passes within 1e-5 of the reference, relative plus absolute: a zero,
// scaled or misplaced tap fails wherever a tap saw any input.
func TestDWBackwardFilter(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	type tc struct{ h, w, c, k, s, pt, pl int }
	var cases []tc
	for _, k := range []int{3, 5} {
		for _, s := range []int{1, 2} {
			for _, hw := range [][2]int{{2, 3}, {7, 7}, {9, 12}} {
				for _, c := range []int{3, 8, 12, 24, 40, 72, 136} {
					ho, wo := (hw[0]+s-1)/s, (hw[1]+s-1)/s
					pt := max((ho-1)*s+k-hw[0], 0) / 2
					pl := max((wo-1)*s+k-hw[1], 0) / 2
					cases = append(cases, tc{hw[0], hw[1], c, k, s, pt, pl})
				}
			}
		}
	}
	// Other paddings: none, more at the top than at the left, all of it.
	cases = append(cases, tc{6, 6, 24, 3, 1, 0, 0}, tc{6, 7, 40, 3, 2, 2, 1}, tc{8, 8, 12, 5, 2, 0, 4}, tc{5, 9, 72, 5, 1, 4, 2})
	checked := 0
	for _, mode := range ISAs() {
		restore := UseISA(mode)
		for _, c := range cases {
			ho, wo := (c.h+c.s-1)/c.s, (c.w+c.s-1)/c.s
			d := NewDW(c.h, c.w, c.c, c.k, c.s, ho, wo, c.pt, c.pl)
			x := randSlice(r, c.h*c.w*c.c)
			dy := randSlice(r, ho*wo*c.c)
			dw := randSlice(r, c.k*c.k*c.c)
			want := naiveDWFilterGrad(c.h, c.w, c.c, c.k, c.s, ho, wo, c.pt, c.pl, x, dy)
			for i, v := range dw {
				want[i] += float64(v)
			}
			d.BackwardFilter(dw, dy, x)
			for i, g := range dw {
				if math.Abs(float64(g)-want[i]) > 1e-5*(1+math.Abs(want[i])) {
					t.Fatalf("%s %+v: filter gradient tap %d channel %d = %.7g, want %.7g", mode, c, i/c.c, i%c.c, g, want[i])
				}
				checked++
			}
		}
		restore()
	}
	t.Logf("%d filter-gradient elements on %d kernel paths", checked, len(ISAs()))
}
