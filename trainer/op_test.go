package trainer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/effnas/effnas/space"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// wsumLayer is a test-only cost: sum(x * r) for a fixed random r, computed
// in float64 and kept in last so finite differences do not lose precision.
type wsumLayer struct {
	r    []float32
	last float64
}

func (l *wsumLayer) name() string           { return "wsum" }
func (l *wsumLayer) outShape() tensor.Shape { return tensor.ScalarShape() }
func (l *wsumLayer) diff() []bool           { return []bool{true} }
func (l *wsumLayer) forward(rt *runtime, in [][]float32, out []float32) {
	var s float64
	for i, v := range in[0][:len(l.r)] {
		s += float64(v) * float64(l.r[i])
	}
	l.last = s
	out[0] = float32(s)
}
func (l *wsumLayer) backward(rt *runtime, in [][]float32, out, dy []float32, din [][]float32) {
	for i, v := range l.r {
		din[0][i] = v * dy[0]
	}
}

type gradInput struct {
	shape  tensor.Shape
	scale  float64 // standard deviation of the random values
	shift  float64
	noGrad bool // the layer gives this input no gradient (the stem's images)
}

// checkGrad builds net over fresh inputs, differentiates the cost and
// compares every input's gradient with central differences at up to 28
// coordinates per input (see the tolerance below).
func checkGrad(t *testing.T, threads int, inputs []gradInput,
	net func(rt *runtime, in []*G.Node) (*G.Node, func() float64, error)) {
	t.Helper()
	r := rand.New(rand.NewPCG(7, 11))
	g := G.NewGraph()
	rt := &runtime{threads: threads, training: true}
	nodes := make([]*G.Node, len(inputs))
	data := make([][]float32, len(inputs))
	for i, in := range inputs {
		data[i] = make([]float32, in.shape.TotalSize())
		for j := range data[i] {
			data[i][j] = float32(r.NormFloat64()*in.scale + in.shift)
		}
		v := tensor.New(tensor.WithShape(in.shape.Clone()...), tensor.WithBacking(data[i]))
		nodes[i] = G.NewTensor(g, tensor.Float32, in.shape.Dims(), G.WithShape(in.shape.Clone()...), G.WithName(fmt.Sprintf("in%d", i)), G.WithValue(v))
	}
	cost, value, err := net(rt, nodes)
	if err != nil {
		t.Fatal(err)
	}
	var wrt G.Nodes
	for i, n := range nodes {
		if !inputs[i].noGrad {
			wrt = append(wrt, n)
		}
	}
	grads, err := G.Grad(cost, wrt...)
	if err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	run := func() float64 {
		rt.gen++
		rt.rng = rand.New(rand.NewPCG(3, 5)) // the same dropout masks every run
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		vm.Reset()
		return value()
	}
	run()
	analytic := make([][]float32, len(inputs))
	k := 0
	for i := range inputs {
		if !inputs[i].noGrad {
			analytic[i] = append([]float32(nil), f32s(grads[k].Value())...)
			k++
		}
	}
	const eps = 1e-2
	for i := range inputs {
		if inputs[i].noGrad {
			continue
		}
		var pts []gradPoint
		scale := 0.0 // the largest numerical gradient seen
		for _, j := range r.Perm(len(data[i]))[:min(28, len(data[i]))] {
			old := data[i][j]
			data[i][j] = old + eps
			up := run()
			data[i][j] = old - eps
			down := run()
			data[i][j] = old
			pt := gradPoint{name: fmt.Sprintf("input %d[%d]", i, j), num: (up - down) / (2 * eps), got: float64(analytic[i][j])}
			pts = append(pts, pt)
			scale = max(scale, math.Abs(pt.num))
		}
		if scale < 1e-3 {
			t.Errorf("input %d: no numerical gradient above %.3g to check", i, scale)
			continue
		}
		// The costs sum many float32 terms, so a central difference's
		// rounding error scales with the cost, not with one coordinate's
		// gradient: up to 6e-4 times the largest component seen (its
		// truncation error, up to 0.1% of the component). Hence an
		// absolute term of 0.2% of the largest; coordinates below 4% of
		// the largest are not counted as checked: there a zero gradient,
		// or one 10% off, would pass. (Under the former tolerance, 2% of
		// max(1, |num|), a zero gradient passed at 269 of 9016.)
		tol := gradTol{rel: 1e-2, abs: 2e-3 * scale}
		var kept []gradPoint
		for _, pt := range pts {
			switch {
			case math.Abs(pt.num) >= 4e-2*scale:
				kept = append(kept, pt)
			case !tol.ok(pt.got, pt.num):
				t.Errorf("%s: analytic gradient %.5g, numerical %.5g", pt.name, pt.got, pt.num)
			}
		}
		if 2*len(kept) < len(pts) {
			t.Errorf("input %d: only %d of %d coordinates have a gradient above 4%% of the largest", i, len(kept), len(pts))
		}
		checkGradPoints(t, "", tol, kept)
	}
}

// gradTol is the tolerance of a gradient check: the analytic gradient got
// passes against the numerical one num when |got-num| <= rel*|num| + abs.
type gradTol struct{ rel, abs float64 }

func (tol gradTol) ok(got, num float64) bool {
	return math.Abs(got-num) <= tol.rel*math.Abs(num)+tol.abs
}

// gradPoint is one coordinate of a gradient check.
type gradPoint struct {
	name     string
	num, got float64 // numerical and analytic gradients
}

// checkGradPoints reports the points whose analytic gradient is not within
// tol of the numerical one. It checks the tolerance too: at every point, a
// zero gradient and one 10% too large must fail, or the check could not
// tell them from the right one.
func checkGradPoints(t *testing.T, what string, tol gradTol, pts []gradPoint) {
	t.Helper()
	if what != "" {
		what += ": "
	}
	for _, p := range pts {
		if !tol.ok(p.got, p.num) {
			t.Errorf("%s%s: analytic gradient %.5g, numerical %.5g", what, p.name, p.got, p.num)
		}
		if tol.ok(0, p.num) || tol.ok(1.1*p.num, p.num) {
			t.Errorf("%s%s: the tolerance (%g relative plus %.3g) would pass a zero gradient, or one 10%% off, against the numerical %.5g",
				what, p.name, tol.rel, tol.abs, p.num)
		}
	}
}

// wsum appends the weighted-sum cost to node x.
func wsum(rt *runtime, x *G.Node) (*G.Node, func() float64, error) {
	r := rand.New(rand.NewPCG(9, 9))
	l := &wsumLayer{r: make([]float32, x.Shape().TotalSize())}
	for i := range l.r {
		l.r[i] = float32(r.NormFloat64())
	}
	c, _, err := apply(rt, l, x)
	return c, func() float64 { return l.last }, err
}

func single(l layer) func(rt *runtime, in []*G.Node) (*G.Node, func() float64, error) {
	return func(rt *runtime, in []*G.Node) (*G.Node, func() float64, error) {
		y, _, err := apply(rt, l, in...)
		if err != nil {
			return nil, nil, err
		}
		return wsum(rt, y)
	}
}

// specInputs returns random inputs for a layer's parameters: gammas near
// 1, the rest spread like their initialisation (or like it would be if it
// were not constant).
func specInputs(specs []paramSpec) []gradInput {
	var in []gradInput
	for _, s := range specs {
		g := gradInput{shape: s.shape, scale: 0.3}
		switch {
		case strings.HasSuffix(s.name, "gamma"):
			g.shift = 1
		case s.bound > 0:
			g.scale = s.bound
		}
		in = append(in, g)
	}
	return in
}

// built wraps a layer that must be built with the runtime of the check.
func built(newLayer func(rt *runtime) layer) func(rt *runtime, in []*G.Node) (*G.Node, func() float64, error) {
	return func(rt *runtime, in []*G.Node) (*G.Node, func() float64, error) {
		l := newLayer(rt)
		if a, ok := l.(interface{ alloc(*arena) }); ok {
			a.alloc(nil)
		}
		rt.allocate()
		y, _, err := apply(rt, l, in...)
		if err != nil {
			return nil, nil, err
		}
		return wsum(rt, y)
	}
}

// blockCases are the block layers the tests check: every kind of block,
// with and without expansion, squeeze-excite and skip, strides 1 and 2,
// kernels 3 and 5, drop-connect, odd sizes. (A block with ReLU has too many
// kinks within a finite difference of its weights for central differences
// to check it; ref_test.go checks it against a direct implementation.)
var blockCases = []struct {
	name     string
	blk      space.Block
	n, h, in int
	stride   int
	survival float64
	act      int
}{
	{"mbconv se skip", space.Block{Op: space.OpMBConv, Kernel: 3, Expand: 3, Out: 8, SE: 0.25, Skip: true}, 3, 5, 8, 1, 1, actSwish},
	{"mbconv se s2 k5", space.Block{Op: space.OpMBConv, Kernel: 5, Expand: 2, Out: 16, SE: 0.5, Skip: true}, 2, 7, 8, 2, 1, actSwish},
	{"mbconv drop-connect", space.Block{Op: space.OpMBConv, Kernel: 3, Expand: 2, Out: 8, SE: 0.25, Skip: true}, 4, 4, 8, 1, 0.6, actSwish},
	{"mbconv odd no se", space.Block{Op: space.OpMBConv, Kernel: 3, Expand: 3, Out: 5, Skip: true}, 2, 5, 3, 2, 1, actSwish},
	{"sepconv se", space.Block{Op: space.OpSepConv, Kernel: 3, Expand: 1, Out: 16, SE: 0.25, Skip: true}, 2, 6, 16, 1, 0.7, actSwish},
	{"sepconv noskip", space.Block{Op: space.OpSepConv, Kernel: 5, Expand: 1, Out: 8, Skip: false}, 2, 5, 8, 2, 1, actSwish},
	{"conv se skip", space.Block{Op: space.OpConv, Kernel: 3, Expand: 1, Out: 8, SE: 0.25, Skip: true}, 2, 5, 8, 1, 0.7, actSwish},
	{"conv s2", space.Block{Op: space.OpConv, Kernel: 3, Expand: 1, Out: 16, Skip: true}, 2, 5, 8, 2, 1, actSwish},
	// Wider than recomputeZ1: the expansion is kept.
	{"mbconv wide kept z1", space.Block{Op: space.OpMBConv, Kernel: 3, Expand: 2, Out: 40, SE: 0.25, Skip: true}, 2, 3, 40, 1, 0.7, actSwish},
}

func TestLayerGradients(t *testing.T) {
	sh := func(s ...int) tensor.Shape { return tensor.Shape(s) }
	type tc struct {
		name   string
		net    func(rt *runtime, in []*G.Node) (*G.Node, func() float64, error)
		inputs []gradInput
	}
	unit := func(s tensor.Shape) gradInput { return gradInput{shape: s, scale: 1} }
	var cases []tc
	for _, c := range blockCases {
		probe := newBlock(&runtime{threads: 1}, c.n, c.h, c.blk, c.in, c.stride, c.survival, c.act, 0.7, "b")
		in := append([]gradInput{unit(sh(c.n*c.h*c.h, c.in))}, specInputs(probe.specs)...)
		c := c
		cases = append(cases, tc{"block " + c.name, built(func(rt *runtime) layer {
			return newBlock(rt, c.n, c.h, c.blk, c.in, c.stride, c.survival, c.act, 0.7, "b")
		}), in})
	}
	for _, c := range []struct{ n, h, cin, cout int }{{2, 5, 1, 8}, {3, 6, 3, 16}, {2, 7, 2, 5}} {
		c := c
		cases = append(cases, tc{fmt.Sprintf("stem%+v", c), built(func(rt *runtime) layer {
			return newStem(rt, c.n, c.h, c.cin, c.cout, actSwish)
		}), []gradInput{{shape: sh(c.n*c.h*c.h, c.cin), scale: 1, noGrad: true}, {shape: sh(9*c.cin, c.cout), scale: 0.5}, {shape: sh(c.cout), scale: 0.3, shift: 1}, {shape: sh(c.cout), scale: 0.3}}})
	}
	for _, c := range []struct{ n, hw, cin, cout int }{{3, 4, 8, 16}, {8, 1, 5, 7}} {
		c := c
		cases = append(cases, tc{fmt.Sprintf("head%+v", c), built(func(rt *runtime) layer {
			return newHead(rt, c.n, c.hw, c.cin, c.cout, actSwish)
		}), []gradInput{unit(sh(c.n*c.hw, c.cin)), {shape: sh(c.cin, c.cout), scale: 0.5}, {shape: sh(c.cout), scale: 0.3, shift: 1}, {shape: sh(c.cout), scale: 0.3}}})
	}
	cases = append(cases, tc{"dense", single(&denseLayer{n: 5, cin: 7, cout: 3}),
		[]gradInput{unit(sh(5, 7)), unit(sh(7, 3)), unit(sh(3))}})
	cases = append(cases, tc{"bn big", single(newBN(1024, 24, actSwish)),
		[]gradInput{{shape: sh(1024, 24), scale: 2, shift: 0.5}, {shape: sh(24), scale: 0.3, shift: 1}, unit(sh(24))}})
	for _, act := range []int{actNone, actSwish, actReLU} {
		cases = append(cases, tc{fmt.Sprintf("bn act%d", act), single(newBN(12, 3, act)),
			[]gradInput{{shape: sh(12, 3), scale: 2, shift: 0.5}, {shape: sh(3), scale: 0.3, shift: 1}, unit(sh(3))}})
	}
	cases = append(cases, tc{"dropout", single(&dropoutLayer{shape: sh(4, 5), rate: 0.3}), []gradInput{unit(sh(4, 5))}})
	for _, c := range cases {
		for _, threads := range []int{1, 2} {
			for _, chunked := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/threads%d/chunked%v", c.name, threads, chunked), func(t *testing.T) {
					if chunked {
						// One image per chunk.
						defer func(b int) { chunkBytes = b }(chunkBytes)
						chunkBytes = 1
					}
					checkGrad(t, threads, c.inputs, c.net)
				})
			}
		}
	}
}

func TestCrossEntropyGradient(t *testing.T) {
	for _, smoothing := range []float64{0, 0.1} {
		l := &xentLayer{n: 4, k: 5, smoothing: smoothing, labels: []int{1, 4, 0, 2}, valid: 3}
		checkGrad(t, 1, []gradInput{{shape: tensor.Shape{4, 5}, scale: 2}},
			func(rt *runtime, in []*G.Node) (*G.Node, func() float64, error) {
				c, _, err := apply(rt, l, in[0])
				return c, func() float64 { return l.lossSum / float64(l.valid) }, err
			})
	}
}

func TestSamePad(t *testing.T) {
	for _, c := range []struct{ in, k, s, out, lead int }{
		{32, 3, 2, 16, 0}, {33, 3, 2, 17, 1}, {16, 5, 2, 8, 1}, {8, 5, 1, 8, 2}, {1, 3, 2, 1, 1}, {2, 3, 2, 1, 0},
	} {
		out, lead := samePad(c.in, c.k, c.s)
		if out != c.out || lead != c.lead {
			t.Errorf("samePad(%d, k%d, s%d) = %d, %d; want %d, %d", c.in, c.k, c.s, out, lead, c.out, c.lead)
		}
	}
}
