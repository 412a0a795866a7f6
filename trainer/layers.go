package trainer

import (
	"fmt"
	"math"

	"github.com/effnas/effnas/trainer/internal/kern"
	"gorgonia.org/tensor"
)

// stemLayer is the stem: a 3x3 stride-2 convolution of the input images
// (im2col, chunk by chunk, and a GEMM) with batch norm and the activation.
// It keeps z, the batch norm's input; the images get no gradient.
// Inputs: x (N*H*W, Cin), w (9*Cin, Cout), gamma, beta.
type stemLayer struct {
	n, cout int
	cv      *im2col
	bn      *bnLayer
	z       []float32
	chunk   int
	parts   [][][]float32
}

func newStem(rt *runtime, n, h, cin, cout, act int) *stemLayer {
	l := &stemLayer{n: n, cout: cout, cv: newIm2col(h, h, cin, 3, 2)}
	rows := n * l.cv.ho * l.cv.wo
	l.bn = newBN(rows, cout, act).threads(rt.threads)
	hw := l.cv.ho * l.cv.wo
	l.chunk = chunkImages(hw * max(cout, l.cv.width()))
	nc := min(l.chunk, rt.perThread(n))
	rt.needLocalBuf(lCols, nc*hw*l.cv.width())
	rt.needLocalBuf(lA, nc*hw*cout)
	rt.needShared(sGradOut, rows*cout)
	return l
}

func (l *stemLayer) name() string           { return fmt.Sprintf("stem(%v->%d)", l.cv, l.cout) }
func (l *stemLayer) outShape() tensor.Shape { return tensor.Shape{l.n * l.cv.ho * l.cv.wo, l.cout} }
func (l *stemLayer) diff() []bool           { return []bool{false, true, true, true} }
func (l *stemLayer) selfTimed() bool        { return true }
func (l *stemLayer) floats() int64 {
	return int64(l.n*l.cv.ho*l.cv.wo)*int64(l.cout) + l.bn.floats()
}
func (l *stemLayer) alloc(a *arena) { l.z = a.take(l.n * l.cv.ho * l.cv.wo * l.cout) }

func (l *stemLayer) forward(rt *runtime, in [][]float32, out []float32) {
	hw, kk, c := l.cv.ho*l.cv.wo, l.cv.width(), l.cout
	st := stats(rt)
	l.bn.begin()
	ph := rt.phase()
	rt.parImages(l.n, l.chunk, func(t, n0, n1 int) {
		ph.begin(t)
		rows := (n1 - n0) * hw
		cols := rt.localBuf(t, lCols, rows*kk)
		l.cv.fill(cols, in[0], n0, n1)
		z := l.z[n0*hw*c:][:rows*c]
		kern.Gemm(1, rows, c, kk, cols, kk, in[1], c, z, c, false)
		if st {
			l.bn.accum(t, z, rows)
		}
		ph.mark(t, kindStem)
	})
	l.bn.finish(rt, in[2], in[3])
	ph.end()
	rows := l.n * hw
	rt.work(kindStem, 2*float64(rows)*float64(kk*c), 4*float64(rows)*float64(c))
	rt.single(kindBNAct, func() {
		kern.Par(rt.threads, l.n, func(_, n0, n1 int) {
			l.bn.apply(out[n0*hw*c:], l.z[n0*hw*c:], (n1-n0)*hw, nil, nil)
		})
	})
	rt.work(kindBNAct, 0, 8*float64(rows*c))
}

func (l *stemLayer) backward(rt *runtime, in [][]float32, out, dy []float32, din [][]float32) {
	hw, kk, c := l.cv.ho*l.cv.wo, l.cv.width(), l.cout
	weights := []int{1}
	startGrads(&l.parts, rt.threads, din, weights)
	dz := rt.sharedBuf(sGradOut, l.n*hw*c)
	l.bn.begin()
	rt.single(kindBNAct, func() {
		kern.Par(rt.threads, l.n, func(t, n0, n1 int) {
			o := n0 * hw * c
			l.bn.grad(t, dz[o:], dy[o:], l.z[o:], (n1-n0)*hw, nil, nil, nil)
		})
	})
	l.bn.finishGrad(in[2], din[2], din[3])
	ph := rt.phase()
	rt.parImages(l.n, l.chunk, func(t, n0, n1 int) {
		ph.begin(t)
		rows := (n1 - n0) * hw
		dzc := rt.localBuf(t, lA, rows*c)
		l.bn.gradApply(dzc, dz[n0*hw*c:], l.z[n0*hw*c:], rows)
		ph.mark(t, kindBNAct)
		cols := rt.localBuf(t, lCols, rows*kk)
		l.cv.fill(cols, in[0], n0, n1)
		g := din[1]
		if t > 0 {
			g = l.parts[t][1]
		}
		kern.GemmTN(1, kk, c, rows, cols, kk, dzc, c, g, c, true)
		ph.mark(t, kindStem)
	})
	ph.end()
	rows := l.n * hw
	rt.work(kindStem, 2*float64(rows)*float64(kk*c), 0)
	rt.work(kindBNAct, 0, 20*float64(rows*c))
	sumGrads(l.parts, din, weights)
}

// headLayer is the head: a 1x1 convolution, batch norm, the activation and
// global average pooling, which yields (N, Cout). Its activation is never
// stored: the pooling sums it chunk by chunk as it is computed.
// Inputs: x (N*HW, Cin), w (Cin, Cout), gamma, beta.
type headLayer struct {
	n, hw, cin, cout int
	bn               *bnLayer
	z                []float32
	chunk            int
	parts            [][][]float32
}

func newHead(rt *runtime, n, hw, cin, cout, act int) *headLayer {
	l := &headLayer{n: n, hw: hw, cin: cin, cout: cout}
	l.bn = newBN(n*hw, cout, act).threads(rt.threads)
	l.chunk = chunkImages(hw * cout)
	rt.needLocalBuf(lA, min(l.chunk, rt.perThread(n))*hw*cout)
	rt.needShared(sGradOut, n*hw*cout)
	rt.needShared(sWT1, cin*cout)
	return l
}

func (l *headLayer) alloc(a *arena) { l.z = a.take(l.n * l.hw * l.cout) }

func (l *headLayer) name() string {
	return fmt.Sprintf("head(%dx%d,%d->%d)", l.n, l.hw, l.cin, l.cout)
}
func (l *headLayer) outShape() tensor.Shape { return tensor.Shape{l.n, l.cout} }
func (l *headLayer) diff() []bool           { return []bool{true, true, true, true} }
func (l *headLayer) selfTimed() bool        { return true }
func (l *headLayer) floats() int64 {
	return int64(l.n*l.hw)*int64(l.cout) + l.bn.floats()
}

func (l *headLayer) forward(rt *runtime, in [][]float32, out []float32) {
	hw, c := l.hw, l.cout
	rows := l.n * hw
	l.bn.begin()
	var epi func(t, i0, i1 int)
	if stats(rt) {
		epi = func(t, i0, i1 int) { l.bn.accum(t, l.z[i0*c:], i1-i0) }
	}
	rt.single(kindHead, func() {
		kern.GemmEpi(rt.threads, rows, c, l.cin, in[0], l.cin, in[1], c, l.z, c, false, epi)
		l.bn.finish(rt, in[2], in[3])
	})
	rt.work(kindHead, 2*float64(rows)*float64(l.cin*c), 4*float64(rows)*float64(l.cin+c))
	inv := 1 / float32(hw)
	ph := rt.phase()
	rt.parImages(l.n, l.chunk, func(t, n0, n1 int) {
		ph.begin(t)
		a := rt.localBuf(t, lA, (n1-n0)*hw*c)
		l.bn.apply(a, l.z[n0*hw*c:], (n1-n0)*hw, nil, nil)
		ph.mark(t, kindBNAct)
		for i := n0; i < n1; i++ {
			o := out[i*c:][:c]
			clear(o)
			kern.ColSum(a[(i-n0)*hw*c:], hw, c, o)
			for j := range o {
				o[j] *= inv
			}
		}
		ph.mark(t, kindPool)
	})
	ph.end()
	rt.work(kindBNAct, 0, 4*float64(rows*c))
	rt.work(kindPool, 0, 4*float64(rows*c))
}

func (l *headLayer) backward(rt *runtime, in [][]float32, out, dy []float32, din [][]float32) {
	hw, c, cin := l.hw, l.cout, l.cin
	weights := []int{1}
	startGrads(&l.parts, rt.threads, din, weights)
	dz := rt.sharedBuf(sGradOut, l.n*hw*c)
	inv := 1 / float32(hw)
	l.bn.begin()
	ph0 := rt.phase()
	rt.parImages(l.n, l.chunk, func(t, n0, n1 int) {
		ph0.begin(t)
		// The pooling's gradient, spread over each image's pixels.
		g := rt.localBuf(t, lA, (n1-n0)*hw*c)
		for i := n0; i < n1; i++ {
			d := dy[i*c:][:c]
			for p := 0; p < hw; p++ {
				gp := g[((i-n0)*hw+p)*c:][:c]
				for j, v := range d {
					gp[j] = v * inv
				}
			}
		}
		ph0.mark(t, kindPool)
		o := n0 * hw * c
		l.bn.grad(t, dz[o:], g, l.z[o:], (n1-n0)*hw, nil, nil, nil)
		ph0.mark(t, kindBNAct)
	})
	ph0.end()
	l.bn.finishGrad(in[2], din[2], din[3])
	wT := rt.sharedBuf(sWT1, c*cin)
	rt.single(kindHead, func() { kern.Transpose(rt.threads, cin, c, in[1], wT) })
	ph := rt.phase()
	rt.parImages(l.n, l.chunk, func(t, n0, n1 int) {
		ph.begin(t)
		rows := (n1 - n0) * hw
		dzc := rt.localBuf(t, lA, rows*c)
		l.bn.gradApply(dzc, dz[n0*hw*c:], l.z[n0*hw*c:], rows)
		ph.mark(t, kindBNAct)
		g := din[1]
		if t > 0 {
			g = l.parts[t][1]
		}
		kern.GemmTN(1, cin, c, rows, in[0][n0*hw*cin:], cin, dzc, c, g, c, true)
		kern.Gemm(1, rows, cin, c, dzc, c, wT, cin, din[0][n0*hw*cin:], cin, false)
		ph.mark(t, kindHead)
	})
	ph.end()
	rows := l.n * hw
	rt.work(kindHead, 4*float64(rows)*float64(cin*c), 4*float64(rows)*float64(2*cin+c))
	rt.work(kindBNAct, 0, 16*float64(rows*c))
	sumGrads(l.parts, din, weights)
}

// denseLayer is a fully connected layer with bias, the classifier:
// x (N, Cin) times w (Cin, Cout) plus b (Cout).
type denseLayer struct {
	n, cin, cout int
	wT           []float32
}

func (l *denseLayer) name() string           { return fmt.Sprintf("dense(%d,%d->%d)", l.n, l.cin, l.cout) }
func (l *denseLayer) outShape() tensor.Shape { return tensor.Shape{l.n, l.cout} }
func (l *denseLayer) diff() []bool           { return []bool{true, true, true} }

func (l *denseLayer) forward(rt *runtime, in [][]float32, out []float32) {
	kern.Gemm(rt.threads, l.n, l.cout, l.cin, in[0], l.cin, in[1], l.cout, out, l.cout, false)
	for i := 0; i < l.n; i++ {
		row := out[i*l.cout:][:l.cout]
		for j, v := range in[2][:l.cout] {
			row[j] += v
		}
	}
}

func (l *denseLayer) backward(rt *runtime, in [][]float32, out, dy []float32, din [][]float32) {
	if din[1] != nil {
		kern.GemmTN(rt.threads, l.cin, l.cout, l.n, in[0], l.cin, dy, l.cout, din[1], l.cout, false)
	}
	if din[2] != nil {
		db := din[2][:l.cout]
		clear(db)
		for i := 0; i < l.n; i++ {
			for j, v := range dy[i*l.cout:][:l.cout] {
				db[j] += v
			}
		}
	}
	if din[0] != nil {
		if l.wT == nil {
			l.wT = make([]float32, l.cin*l.cout)
		}
		kern.Transpose(rt.threads, l.cin, l.cout, in[1], l.wT)
		kern.Gemm(rt.threads, l.n, l.cin, l.cout, dy, l.cout, l.wT, l.cin, din[0], l.cin, false)
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
