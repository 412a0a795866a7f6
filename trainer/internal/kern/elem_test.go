package kern

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func sigmoid64(u float64) float64 { return 1 / (1 + math.Exp(-u)) }

// act64 is the activation and its derivative in float64, the reference.
func act64(act Act, u float64) (y, dy float64) {
	switch act {
	case ActSwish:
		s := sigmoid64(u)
		return u * s, s * (1 + u*(1-s))
	case ActReLU:
		if u > 0 {
			return u, 1
		}
		return 0, 0
	}
	return u, 1
}

// elemShapes are rows x columns: column counts that are and are not
// multiples of the vector width, and one row.
var elemShapes = [][2]int{{1, 1}, {3, 5}, {7, 8}, {5, 16}, {9, 24}, {4, 40}, {33, 96}, {2, 13}, {6, 264}, {70, 32}}

// TestElementwise checks every elementwise kernel against a float64
// reference on each kernel path.
func TestElementwise(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, mode := range ISAs() {
		restore := UseISA(mode)
		for _, sh := range elemShapes {
			rows, c := sh[0], sh[1]
			n := rows * c
			x := randSlice(r, n)
			for i := range x {
				x[i] *= 3 // reach the saturated ends of swish
			}
			dy, add := randSlice(r, n), randSlice(r, n)
			scale, shift, mul, gadd := randSlice(r, c), randSlice(r, c), randSlice(r, c), randSlice(r, c)
			for _, act := range []Act{ActNone, ActSwish, ActReLU} {
				for _, withMul := range []bool{false, true} {
					name := fmt.Sprintf("%s %dx%d act %d mul %v", mode, rows, c, act, withMul)
					var m []float32
					if withMul {
						m = mul
					}
					got, want := make([]float32, n), make([]float32, n)
					sig, wantSig := make([]float32, n), make([]float32, n)
					for i, v := range x {
						j := i % c
						u := float64(v)*float64(scale[j]) + float64(shift[j])
						y, _ := act64(act, u)
						if withMul {
							y *= float64(mul[j])
						}
						want[i] = float32(y)
						wantSig[i] = float32(sigmoid64(u))
					}
					Affine(got, x, rows, c, scale, shift, act, m, sig)
					if err := closeTo(got, want, 2e-6); err != nil {
						t.Errorf("Affine %s: %v", name, err)
					}
					if act == ActSwish {
						if err := closeTo(sig, wantSig, 1e-6); err != nil {
							t.Errorf("Affine %s: sigmoid%v", name, err)
						}
					}
					// ActGrad, with and without dy, gmul and gadd, computing
					// the sigmoid or reading it.
					for variant := 0; variant < 8; variant++ {
						var sg []float32
						if variant&4 != 0 {
							sg = sig
						}
						var d, gm, ga []float32
						if variant&1 == 0 {
							d = dy
							if variant&2 != 0 {
								gm = mul
							}
						}
						if variant > 0 {
							ga = gadd
						}
						dz, wantDz := make([]float32, n), make([]float32, n)
						sdz, sdzx := make([]float32, c), make([]float32, c)
						wantS, wantQ := make([]float64, c), make([]float64, c)
						for i := range sdz {
							sdz[i], sdzx[i] = 1, -1
							wantS[i], wantQ[i] = 1, -1
						}
						for i, v := range x {
							j := i % c
							var g float64
							if d != nil {
								g = float64(d[i])
								if gm != nil {
									g *= float64(gm[j])
								}
							}
							if ga != nil {
								g += float64(ga[j])
							}
							_, da := act64(act, float64(v)*float64(scale[j])+float64(shift[j]))
							wantDz[i] = float32(g * da)
							wantS[j] += g * da
							wantQ[j] += g * da * float64(v)
						}
						ActGrad(dz, d, x, rows, c, scale, shift, gm, ga, act, sg, sdz, sdzx)
						if err := closeTo(dz, wantDz, 1e-5); err != nil {
							t.Errorf("ActGrad %s variant %d: dz%v", name, variant, err)
						}
						if err := closeTo(sdz, f32(wantS), 1e-5*float64(rows)); err != nil {
							t.Errorf("ActGrad %s variant %d: sdz%v", name, variant, err)
						}
						if err := closeTo(sdzx, f32(wantQ), 1e-5*float64(rows)); err != nil {
							t.Errorf("ActGrad %s variant %d: sdzx%v", name, variant, err)
						}
					}
				}
			}
			got, want := make([]float32, n), make([]float32, n)
			for i, v := range x {
				j := i % c
				want[i] = float32(float64(v)*float64(scale[j]) + float64(shift[j]) + float64(add[i]))
			}
			AffineAdd(got, x, add, rows, c, scale, shift)
			if err := closeTo(got, want, 1e-6); err != nil {
				t.Errorf("AffineAdd %s %dx%d: %v", mode, rows, c, err)
			}
			for i, v := range x {
				j := i % c
				want[i] = float32(float64(scale[j])*float64(v) + float64(shift[j])*float64(dy[i]) + float64(mul[j]))
			}
			Affine2(got, x, dy, rows, c, scale, shift, mul)
			if err := closeTo(got, want, 1e-6); err != nil {
				t.Errorf("Affine2 %s %dx%d: %v", mode, rows, c, err)
			}
			// Column reductions add to what the sums hold.
			sum, sq, dot := make([]float32, c), make([]float32, c), make([]float32, c)
			ws, wq, wd := make([]float64, c), make([]float64, c), make([]float64, c)
			for j := range sum {
				sum[j], sq[j], dot[j] = 2, 3, 4
				ws[j], wq[j], wd[j] = 2, 3, 4
			}
			for i, v := range x {
				j := i % c
				ws[j] += float64(v)
				wq[j] += float64(v) * float64(v)
				wd[j] += float64(v) * float64(dy[i])
			}
			ColStats(x, rows, c, sum, sq)
			if err := closeTo(sum, f32(ws), 1e-5*float64(rows)); err != nil {
				t.Errorf("ColStats %s %dx%d: sum%v", mode, rows, c, err)
			}
			if err := closeTo(sq, f32(wq), 1e-5*float64(rows)); err != nil {
				t.Errorf("ColStats %s %dx%d: sq%v", mode, rows, c, err)
			}
			for j := range sum {
				sum[j] = 2
			}
			ColSum(x, rows, c, sum)
			if err := closeTo(sum, f32(ws), 1e-5*float64(rows)); err != nil {
				t.Errorf("ColSum %s %dx%d: %v", mode, rows, c, err)
			}
			ColDot(x, dy, rows, c, dot)
			if err := closeTo(dot, f32(wd), 1e-5*float64(rows)); err != nil {
				t.Errorf("ColDot %s %dx%d: %v", mode, rows, c, err)
			}
		}
		restore()
	}
}

func f32(s []float64) []float32 {
	out := make([]float32, len(s))
	for i, v := range s {
		out[i] = float32(v)
	}
	return out
}

// TestElementwiseNaN: a NaN input gives NaN outputs and sums, so that a
// training with a NaN in its data reports a NaN loss.
func TestElementwiseNaN(t *testing.T) {
	for _, mode := range ISAs() {
		restore := UseISA(mode)
		const rows, c = 2, 16
		x := make([]float32, rows*c)
		x[3] = float32(math.NaN())
		one := make([]float32, c)
		for i := range one {
			one[i] = 1
		}
		y := make([]float32, rows*c)
		Affine(y, x, rows, c, one, one, ActSwish, nil, nil)
		if !math.IsNaN(float64(y[3])) {
			t.Errorf("%s: swish(NaN) = %g", mode, y[3])
		}
		sum, sq := make([]float32, c), make([]float32, c)
		ColStats(x, rows, c, sum, sq)
		if !math.IsNaN(float64(sum[3])) || !math.IsNaN(float64(sq[3])) {
			t.Errorf("%s: ColStats over a NaN = %g, %g", mode, sum[3], sq[3])
		}
		restore()
	}
}
