package trainer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/effnas/effnas/space"
	"github.com/effnas/effnas/trainer/internal/kern"
)

// The forward passes of the layers checked against naive direct
// definitions, written out loop by loop in float64 on NHWC tensors: the
// convolutions (regular and depthwise, every kernel and stride, TensorFlow's
// "same" padding), batch norm with batch statistics, the activations,
// global average pooling and squeeze-excite, composed into the stem, each
// kind of block and the head. (kern tests its kernels the same way.)

// naiveConv is a k x k convolution with stride s and "same" padding of n
// images h x w x cin by w (k*k*cin, cout), tap-major.
func naiveConv(x []float64, n, h, w, cin int, wt []float64, cout, k, s int) (y []float64, ho, wo int) {
	ho, pt := samePad(h, k, s)
	wo, pl := samePad(w, k, s)
	y = make([]float64, n*ho*wo*cout)
	for b := 0; b < n; b++ {
		for oh := 0; oh < ho; oh++ {
			for ow := 0; ow < wo; ow++ {
				for co := 0; co < cout; co++ {
					var sum float64
					for kh := 0; kh < k; kh++ {
						for kw := 0; kw < k; kw++ {
							ih, iw := oh*s-pt+kh, ow*s-pl+kw
							if ih < 0 || ih >= h || iw < 0 || iw >= w {
								continue
							}
							for ci := 0; ci < cin; ci++ {
								sum += x[((b*h+ih)*w+iw)*cin+ci] * wt[((kh*k+kw)*cin+ci)*cout+co]
							}
						}
					}
					y[((b*ho+oh)*wo+ow)*cout+co] = sum
				}
			}
		}
	}
	return y, ho, wo
}

// naiveDepthwise is a k x k depthwise convolution with stride s and "same"
// padding by w (k*k, c).
func naiveDepthwise(x []float64, n, h, w, c int, wt []float64, k, s int) (y []float64, ho, wo int) {
	ho, pt := samePad(h, k, s)
	wo, pl := samePad(w, k, s)
	y = make([]float64, n*ho*wo*c)
	for b := 0; b < n; b++ {
		for oh := 0; oh < ho; oh++ {
			for ow := 0; ow < wo; ow++ {
				for ch := 0; ch < c; ch++ {
					var sum float64
					for kh := 0; kh < k; kh++ {
						for kw := 0; kw < k; kw++ {
							ih, iw := oh*s-pt+kh, ow*s-pl+kw
							if ih >= 0 && ih < h && iw >= 0 && iw < w {
								sum += x[((b*h+ih)*w+iw)*c+ch] * wt[(kh*k+kw)*c+ch]
							}
						}
					}
					y[((b*ho+oh)*wo+ow)*c+ch] = sum
				}
			}
		}
	}
	return y, ho, wo
}

func naiveAct(act int, v float64) float64 {
	switch act {
	case actSwish:
		return v / (1 + math.Exp(-v))
	case actReLU:
		return max(v, 0)
	case actSigmoid:
		return 1 / (1 + math.Exp(-v))
	}
	return v
}

// naiveBN is batch norm over the m rows of (m, c) with the batch's mean and
// biased variance, epsilon 1e-3, then act.
func naiveBN(z []float64, c int, gamma, beta []float64, act int) []float64 {
	m := len(z) / c
	y := make([]float64, len(z))
	for j := 0; j < c; j++ {
		var mean, v float64
		for i := 0; i < m; i++ {
			mean += z[i*c+j]
		}
		mean /= float64(m)
		for i := 0; i < m; i++ {
			d := z[i*c+j] - mean
			v += d * d
		}
		v /= float64(m)
		for i := 0; i < m; i++ {
			y[i*c+j] = naiveAct(act, gamma[j]*(z[i*c+j]-mean)/math.Sqrt(v+1e-3)+beta[j])
		}
	}
	return y
}

// naivePool is global average pooling: (n*hw, c) -> (n, c).
func naivePool(x []float64, n, hw, c int) []float64 {
	y := make([]float64, n*c)
	for b := 0; b < n; b++ {
		for p := 0; p < hw; p++ {
			for j := 0; j < c; j++ {
				y[b*c+j] += x[(b*hw+p)*c+j] / float64(hw)
			}
		}
	}
	return y
}

// naiveDense is x (n, cin) times w (cin, cout) plus b (nil for none).
func naiveDense(x []float64, n, cin int, w []float64, cout int, b []float64) []float64 {
	y := make([]float64, n*cout)
	for i := 0; i < n; i++ {
		for j := 0; j < cout; j++ {
			var s float64
			if b != nil {
				s = b[j]
			}
			for p := 0; p < cin; p++ {
				s += x[i*cin+p] * w[p*cout+j]
			}
			y[i*cout+j] = s
		}
	}
	return y
}

// naiveSE is squeeze-excite: every channel of every image times
// sigmoid(act(pool*wr + br)*we + be).
func naiveSE(a []float64, n, hw, c int, wr, br, we, be []float64, act int) []float64 {
	r := len(br)
	h := naiveDense(naivePool(a, n, hw, c), n, c, wr, r, br)
	for i := range h {
		h[i] = naiveAct(act, h[i])
	}
	g := naiveDense(h, n, r, we, c, be)
	y := make([]float64, len(a))
	for b := 0; b < n; b++ {
		for p := 0; p < hw; p++ {
			for j := 0; j < c; j++ {
				y[(b*hw+p)*c+j] = a[(b*hw+p)*c+j] * naiveAct(actSigmoid, g[b*c+j])
			}
		}
	}
	return y
}

// naiveBlock is a block's forward pass in training mode from its
// definition; mask is each image's drop-connect factor.
func naiveBlock(x []float64, n, h int, blk space.Block, in, stride, act int, p map[string][]float64, mask []float32) []float64 {
	y, c, ho := x, in, h
	if blk.Op == space.OpConv {
		y, ho, _ = naiveConv(y, n, h, h, in, p["conv.w"], blk.Out, blk.Kernel, stride)
		c = blk.Out
		y = naiveBN(y, c, p["conv.bn.gamma"], p["conv.bn.beta"], act)
	} else {
		if blk.Expand != 1 {
			c = in * blk.Expand
			y, _, _ = naiveConv(y, n, h, h, in, p["expand.w"], c, 1, 1)
			y = naiveBN(y, c, p["expand.bn.gamma"], p["expand.bn.beta"], act)
		}
		y, ho, _ = naiveDepthwise(y, n, h, h, c, p["dw.w"], blk.Kernel, stride)
		y = naiveBN(y, c, p["dw.bn.gamma"], p["dw.bn.beta"], act)
	}
	if blk.SE > 0 {
		y = naiveSE(y, n, ho*ho, c, p["se.reduce.w"], p["se.reduce.b"], p["se.expand.w"], p["se.expand.b"], act)
	}
	if blk.Op != space.OpConv {
		y, _, _ = naiveConv(y, n, ho, ho, c, p["project.w"], blk.Out, 1, 1)
		y = naiveBN(y, blk.Out, p["project.bn.gamma"], p["project.bn.beta"], actNone)
	}
	if blk.Skip && stride == 1 && in == blk.Out {
		hw := ho * ho
		for b := 0; b < n; b++ {
			for i := b * hw * blk.Out; i < (b+1)*hw*blk.Out; i++ {
				y[i] = x[i] + y[i]*float64(mask[b])
			}
		}
	}
	return y
}

// refInputs draws a layer's inputs: x standard normal, the parameters as
// specInputs describes them. It returns them as float32 (for the layer)
// and float64 by name (for the reference).
func refInputs(r *rand.Rand, xLen int, specs []paramSpec, prefix string) ([][]float32, []float64, map[string][]float64) {
	draw := func(n int, scale, shift float64) ([]float32, []float64) {
		f, d := make([]float32, n), make([]float64, n)
		for i := range f {
			f[i] = float32(r.NormFloat64()*scale + shift)
			d[i] = float64(f[i])
		}
		return f, d
	}
	x32, x64 := draw(xLen, 1, 0)
	in := [][]float32{x32}
	byName := map[string][]float64{}
	for i, g := range specInputs(specs) {
		f, d := draw(g.shape.TotalSize(), g.scale, g.shift)
		in = append(in, f)
		byName[specs[i].name[len(prefix):]] = d
	}
	return in, x64, byName
}

// compare reports the first element of got more than tol*(1+|want|) from
// want.
func compare(got []float32, want []float64, tol float64) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d values, want %d", len(got), len(want))
	}
	for i, w := range want {
		if !(math.Abs(float64(got[i])-w) <= tol*(1+math.Abs(w))) {
			return fmt.Errorf("[%d] = %g, want %g", i, got[i], w)
		}
	}
	return nil
}

// forwardLayer runs l's forward pass in training mode on threads threads.
func forwardLayer(l layer, threads int, in [][]float32, rt *runtime) []float32 {
	if a, ok := l.(interface{ alloc(*arena) }); ok {
		a.alloc(nil)
	}
	rt.allocate()
	out := make([]float32, l.outShape().TotalSize())
	l.forward(rt, in, out)
	return out
}

// refTolerance is the agreement wanted between float32 layers and float64
// references: batch norm divides by standard deviations estimated from few
// rows, which magnifies the float32 rounding of its inputs.
const refTolerance = 2e-4

// TestBlocksMatchReference: every kind of block, in training mode, gives
// what its definition gives: kernels 3, 5 and 7, strides 1 and 2, odd
// sizes and channel counts, with and without expansion, squeeze-excite and
// skip, swish and ReLU, drop-connect, on 1 and 2 threads and in chunks of
// one image or all of them.
func TestBlocksMatchReference(t *testing.T) {
	type tc struct {
		name     string
		blk      space.Block
		n, h, in int
		stride   int
		survival float64
		act      int
	}
	cases := []tc{
		{"mbconv k7 s2 odd", space.Block{Op: space.OpMBConv, Kernel: 7, Expand: 3, Out: 11, SE: 0.25}, 3, 9, 5, 2, 1, actSwish},
		{"mbconv relu skip", space.Block{Op: space.OpMBConv, Kernel: 3, Expand: 4, Out: 16, SE: 0.25, Skip: true}, 2, 6, 16, 1, 1, actReLU},
		{"sepconv relu s2", space.Block{Op: space.OpSepConv, Kernel: 5, Expand: 1, Out: 24}, 3, 7, 8, 2, 1, actReLU},
		{"conv k5 se", space.Block{Op: space.OpConv, Kernel: 5, Expand: 1, Out: 12, SE: 0.5, Skip: true}, 2, 7, 12, 1, 0.5, actSwish},
	}
	for _, c := range blockCases {
		cases = append(cases, tc{c.name, c.blk, c.n, c.h, c.in, c.stride, c.survival, c.act})
	}
	r := rand.New(rand.NewPCG(31, 32))
	forEachISA(t, func(t *testing.T) {
		for _, c := range cases {
			for _, threads := range []int{1, 2} {
				for _, chunk := range []int{1, 320 << 10} {
					name := fmt.Sprintf("%s/threads%d/chunkBytes%d", c.name, threads, chunk)
					t.Run(name, func(t *testing.T) {
						defer func(b int) { chunkBytes = b }(chunkBytes)
						chunkBytes = chunk
						rt := &runtime{threads: threads, training: true, rng: rand.New(rand.NewPCG(1, 2))}
						l := newBlock(rt, c.n, c.h, c.blk, c.in, c.stride, c.survival, c.act, 1, "b")
						in, x, p := refInputs(r, c.n*c.h*c.h*c.in, l.specs, "b.")
						got := forwardLayer(l, threads, in, rt)
						want := naiveBlock(x, c.n, c.h, c.blk, c.in, c.stride, c.act, p, l.mask)
						if err := compare(got, want, refTolerance); err != nil {
							t.Error(err)
						}
					})
				}
			}
		}
	})
}

// forEachISA runs f as a subtest on each kernel path this machine has
// (pure Go, AVX2, AVX-512).
func forEachISA(t *testing.T, f func(t *testing.T)) {
	for _, isa := range kern.ISAs() {
		t.Run(isa, func(t *testing.T) {
			defer kern.UseISA(isa)()
			f(t)
		})
	}
}

// TestStemAndHeadMatchReference: the stem (3x3 stride-2 convolution, batch
// norm, activation) and the head (1x1 convolution, batch norm, activation,
// global average pooling) against their definitions, on odd sizes.
func TestStemAndHeadMatchReference(t *testing.T) {
	forEachISA(t, testStemAndHead)
}

func testStemAndHead(t *testing.T) {
	r := rand.New(rand.NewPCG(33, 34))
	for _, c := range []struct{ n, h, cin, cout, act int }{
		{2, 7, 1, 8, actSwish}, {3, 8, 3, 16, actSwish}, {2, 5, 2, 5, actReLU}, {1, 9, 1, 4, actSwish},
	} {
		for _, threads := range []int{1, 2} {
			rt := &runtime{threads: threads, training: true}
			l := newStem(rt, c.n, c.h, c.cin, c.cout, c.act)
			specs := []paramSpec{{name: "w", shape: []int{9 * c.cin, c.cout}, bound: 0.5}, {name: "gamma", shape: []int{c.cout}}, {name: "beta", shape: []int{c.cout}}}
			in, x, p := refInputs(r, c.n*c.h*c.h*c.cin, specs, "")
			got := forwardLayer(l, threads, in, rt)
			z, _, _ := naiveConv(x, c.n, c.h, c.h, c.cin, p["w"], c.cout, 3, 2)
			if err := compare(got, naiveBN(z, c.cout, p["gamma"], p["beta"], c.act), refTolerance); err != nil {
				t.Errorf("stem %+v threads %d: %v", c, threads, err)
			}
		}
	}
	for _, c := range []struct{ n, hw, cin, cout, act int }{
		{3, 4, 8, 16, actSwish}, {5, 1, 7, 9, actSwish}, {2, 9, 5, 24, actReLU},
	} {
		for _, threads := range []int{1, 2} {
			rt := &runtime{threads: threads, training: true}
			l := newHead(rt, c.n, c.hw, c.cin, c.cout, c.act)
			specs := []paramSpec{{name: "w", shape: []int{c.cin, c.cout}, bound: 0.5}, {name: "gamma", shape: []int{c.cout}}, {name: "beta", shape: []int{c.cout}}}
			in, x, p := refInputs(r, c.n*c.hw*c.cin, specs, "")
			got := forwardLayer(l, threads, in, rt)
			z, _, _ := naiveConv(x, c.n, c.hw, 1, c.cin, p["w"], c.cout, 1, 1)
			want := naivePool(naiveBN(z, c.cout, p["gamma"], p["beta"], c.act), c.n, c.hw, c.cout)
			if err := compare(got, want, refTolerance); err != nil {
				t.Errorf("head %+v threads %d: %v", c, threads, err)
			}
		}
	}
}

// TestBatchNormMatchesReference: batch norm on its own, with each
// activation, for row counts that are and are not multiples of the
// statistics' blocks and channel counts that are and are not multiples of
// the vector width.
func TestBatchNormMatchesReference(t *testing.T) {
	forEachISA(t, testBatchNorm)
}

func testBatchNorm(t *testing.T) {
	r := rand.New(rand.NewPCG(35, 36))
	for _, sh := range [][2]int{{5, 3}, {64, 8}, {130, 24}, {7, 40}, {200, 13}} {
		for _, act := range []int{actNone, actSwish, actReLU} {
			for _, threads := range []int{1, 2} {
				l := newBN(sh[0], sh[1], act)
				specs := []paramSpec{{name: "gamma", shape: []int{sh[1]}}, {name: "beta", shape: []int{sh[1]}}}
				in, x, p := refInputs(r, sh[0]*sh[1], specs, "")
				for i := range x { // a mean far from zero, as after a convolution
					x[i] = x[i]*3 + 2
					in[0][i] = float32(x[i])
				}
				got := forwardLayer(l, threads, in, &runtime{threads: threads, training: true})
				if err := compare(got, naiveBN(x, sh[1], p["gamma"], p["beta"], act), refTolerance); err != nil {
					t.Errorf("%v act %d threads %d: %v", sh, act, threads, err)
				}
			}
		}
	}
}
