package trainer

import (
	"fmt"
	"math"

	"github.com/effnas/effnas/trainer/internal/kern"
	"gorgonia.org/tensor"
)

// gapLayer is global average pooling: (N*HW, C) -> (N, C).
type gapLayer struct{ n, hw, c int }

func (l *gapLayer) name() string           { return fmt.Sprintf("gap(%d,%d,%d)", l.n, l.hw, l.c) }
func (l *gapLayer) outShape() tensor.Shape { return tensor.Shape{l.n, l.c} }
func (l *gapLayer) diff() []bool           { return []bool{true} }

func (l *gapLayer) forward(rt *runtime, in [][]float32, out []float32) {
	x, c := in[0], l.c
	inv := 1 / float32(l.hw)
	kern.Par(rt.threads, l.n, func(_, lo, hi int) {
		for n := lo; n < hi; n++ {
			o := out[n*c:][:c]
			clear(o)
			for p := 0; p < l.hw; p++ {
				for j, v := range x[(n*l.hw+p)*c:][:c] {
					o[j] += v
				}
			}
			for j := range o {
				o[j] *= inv
			}
		}
	})
}

func (l *gapLayer) backward(rt *runtime, in [][]float32, out, dy []float32, din [][]float32) {
	dx, c := din[0], l.c
	inv := 1 / float32(l.hw)
	kern.Par(rt.threads, l.n, func(_, lo, hi int) {
		for n := lo; n < hi; n++ {
			g := dy[n*c:][:c]
			for p := 0; p < l.hw; p++ {
				d := dx[(n*l.hw+p)*c:][:c]
				for j, v := range g {
					d[j] = v * inv
				}
			}
		}
	})
}

// actLayer is an elementwise activation (swish or sigmoid) of a small
// matrix, used inside squeeze-excite.
type actLayer struct {
	shape tensor.Shape
	act   int
}

func (l *actLayer) name() string           { return fmt.Sprintf("act%d%v", l.act, l.shape) }
func (l *actLayer) outShape() tensor.Shape { return l.shape }
func (l *actLayer) diff() []bool           { return []bool{true} }

func (l *actLayer) forward(rt *runtime, in [][]float32, out []float32) {
	for i, v := range in[0][:len(out)] {
		switch l.act {
		case actSwish:
			out[i] = v * kern.Sigmoid1(v)
		case actSigmoid:
			out[i] = kern.Sigmoid1(v)
		case actReLU:
			out[i] = max(v, 0)
		default:
			out[i] = v
		}
	}
}

func (l *actLayer) backward(rt *runtime, in [][]float32, out, dy []float32, din [][]float32) {
	dx := din[0]
	for i, v := range in[0][:len(dx)] {
		switch l.act {
		case actSwish:
			s := kern.Sigmoid1(v)
			dx[i] = dy[i] * s * (1 + v*(1-s))
		case actSigmoid:
			dx[i] = dy[i] * out[i] * (1 - out[i])
		case actReLU:
			if v > 0 {
				dx[i] = dy[i]
			} else {
				dx[i] = 0
			}
		default:
			dx[i] = dy[i]
		}
	}
}

// scaleLayer multiplies every channel of every image by a per-image,
// per-channel factor (the excite of squeeze-excite): x (N*HW, C), s (N, C).
type scaleLayer struct{ n, hw, c int }

func (l *scaleLayer) name() string           { return fmt.Sprintf("scale(%d,%d,%d)", l.n, l.hw, l.c) }
func (l *scaleLayer) outShape() tensor.Shape { return tensor.Shape{l.n * l.hw, l.c} }
func (l *scaleLayer) diff() []bool           { return []bool{true, true} }

func (l *scaleLayer) forward(rt *runtime, in [][]float32, out []float32) {
	x, s, c := in[0], in[1], l.c
	kern.Par(rt.threads, l.n, func(_, lo, hi int) {
		for n := lo; n < hi; n++ {
			sn := s[n*c:][:c]
			for p := 0; p < l.hw; p++ {
				off := (n*l.hw + p) * c
				xr, yr := x[off:][:c], out[off:][:c]
				for j, v := range xr {
					yr[j] = v * sn[j]
				}
			}
		}
	})
}

func (l *scaleLayer) backward(rt *runtime, in [][]float32, out, dy []float32, din [][]float32) {
	x, s, c := in[0], in[1], l.c
	dx, ds := din[0], din[1]
	kern.Par(rt.threads, l.n, func(_, lo, hi int) {
		for n := lo; n < hi; n++ {
			sn := s[n*c:][:c]
			var dsn []float32
			if ds != nil {
				dsn = ds[n*c:][:c]
				clear(dsn)
			}
			for p := 0; p < l.hw; p++ {
				off := (n*l.hw + p) * c
				g := dy[off:][:c]
				if dx != nil {
					d := dx[off:][:c]
					for j, v := range g {
						d[j] = v * sn[j]
					}
				}
				if dsn != nil {
					kern.MulAdd(dsn, g, x[off:][:c])
				}
			}
		}
	})
}

// residLayer is the identity skip with drop-connect: y = x + f*m[n], where
// in training m[n] is 0 with probability 1-survival and 1/survival otherwise,
// per image; in inference m = 1. Inputs: x (skip) and f (block output).
type residLayer struct {
	n, hw, c int
	survival float64
	mask     []float32
}

func (l *residLayer) name() string           { return fmt.Sprintf("resid(%d,%d,%d)", l.n, l.hw, l.c) }
func (l *residLayer) outShape() tensor.Shape { return tensor.Shape{l.n * l.hw, l.c} }
func (l *residLayer) diff() []bool           { return []bool{true, true} }
func (l *residLayer) identityGrad(i int) bool {
	return i == 0
}

func (l *residLayer) forward(rt *runtime, in [][]float32, out []float32) {
	if l.mask == nil {
		l.mask = make([]float32, l.n)
	}
	for n := range l.mask {
		l.mask[n] = 1
		if rt.training && l.survival < 1 {
			if rt.rng.Float64() < l.survival {
				l.mask[n] = float32(1 / l.survival)
			} else {
				l.mask[n] = 0
			}
		}
	}
	x, f, c := in[0], in[1], l.c
	kern.Par(rt.threads, l.n, func(_, lo, hi int) {
		for n := lo; n < hi; n++ {
			m := l.mask[n]
			span := l.hw * c
			xr, fr, yr := x[n*span:][:span], f[n*span:][:span], out[n*span:][:span]
			for j, v := range xr {
				yr[j] = v + fr[j]*m
			}
		}
	})
}

func (l *residLayer) backward(rt *runtime, in [][]float32, out, dy []float32, din [][]float32) {
	if din[0] != nil {
		copy(din[0], dy)
	}
	df := din[1]
	if df == nil {
		return
	}
	span := l.hw * l.c
	for n := 0; n < l.n; n++ {
		m := l.mask[n]
		for j, v := range dy[n*span:][:span] {
			df[n*span+j] = v * m
		}
	}
}

// dropoutLayer zeroes features with probability rate in training and scales
// the survivors by 1/(1-rate); it is the identity in inference.
type dropoutLayer struct {
	shape tensor.Shape
	rate  float64
	mask  []float32
}

func (l *dropoutLayer) name() string           { return fmt.Sprintf("dropout%v", l.shape) }
func (l *dropoutLayer) outShape() tensor.Shape { return l.shape }
func (l *dropoutLayer) diff() []bool           { return []bool{true} }

func (l *dropoutLayer) forward(rt *runtime, in [][]float32, out []float32) {
	if l.mask == nil {
		l.mask = make([]float32, len(out))
	}
	keep := 1 - l.rate
	for i := range l.mask {
		l.mask[i] = 1
		if rt.training && l.rate > 0 {
			if rt.rng.Float64() < keep {
				l.mask[i] = float32(1 / keep)
			} else {
				l.mask[i] = 0
			}
		}
	}
	for i, v := range in[0][:len(out)] {
		out[i] = v * l.mask[i]
	}
}

func (l *dropoutLayer) backward(rt *runtime, in [][]float32, out, dy []float32, din [][]float32) {
	for i, v := range dy[:len(din[0])] {
		din[0][i] = v * l.mask[i]
	}
}

// xentLayer is the mean softmax cross-entropy of (N, K) logits against the
// labels set before each run, with optional label smoothing. Rows at or
// beyond valid (padding of a last partial batch) are ignored. It also
// counts correct predictions.
type xentLayer struct {
	n, k      int
	smoothing float64
	labels    []int
	valid     int
	prob      []float32
	lossSum   float64 // summed over valid rows, last run
	correct   int     // valid rows whose arg-max is the label, last run
}

func (l *xentLayer) name() string           { return fmt.Sprintf("xent(%d,%d)", l.n, l.k) }
func (l *xentLayer) outShape() tensor.Shape { return tensor.ScalarShape() }
func (l *xentLayer) diff() []bool           { return []bool{true} }

func (l *xentLayer) forward(rt *runtime, in [][]float32, out []float32) {
	if l.prob == nil {
		l.prob = make([]float32, l.n*l.k)
	}
	z := in[0]
	l.lossSum, l.correct = 0, 0
	for n := 0; n < l.valid; n++ {
		zr, pr := z[n*l.k:][:l.k], l.prob[n*l.k:][:l.k]
		best := 0
		mx := zr[0]
		for j, v := range zr {
			if v > mx {
				mx, best = v, j
			}
		}
		var sum float64
		for j, v := range zr {
			e := math.Exp(float64(v - mx))
			pr[j] = float32(e)
			sum += e
		}
		lse := math.Log(sum)
		y := l.labels[n]
		var loss float64
		for j := range pr {
			pr[j] = float32(float64(pr[j]) / sum)
			logp := float64(zr[j]-mx) - lse
			t := l.smoothing / float64(l.k)
			if j == y {
				t += 1 - l.smoothing
			}
			loss -= t * logp
		}
		l.lossSum += loss
		if best == y {
			l.correct++
		}
	}
	out[0] = float32(l.lossSum / float64(max(l.valid, 1)))
}

func (l *xentLayer) backward(rt *runtime, in [][]float32, out, dy []float32, din [][]float32) {
	dz := din[0]
	clear(dz)
	g := dy[0] / float32(max(l.valid, 1))
	for n := 0; n < l.valid; n++ {
		y := l.labels[n]
		for j := 0; j < l.k; j++ {
			t := float32(l.smoothing / float64(l.k))
			if j == y {
				t += float32(1 - l.smoothing)
			}
			dz[n*l.k+j] = g * (l.prob[n*l.k+j] - t)
		}
	}
}
