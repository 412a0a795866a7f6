package trainer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

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
	shape tensor.Shape
	scale float64 // standard deviation of the random values
	shift float64
}

// checkGrad builds net over fresh inputs, differentiates the cost and
// compares every input's gradient with central differences at up to 24
// coordinates per input.
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
	grads, err := G.Grad(cost, nodes...)
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
	for i := range grads {
		analytic[i] = append([]float32(nil), f32s(grads[i].Value())...)
	}
	const eps = 1e-2
	for i := range inputs {
		n := len(data[i])
		idx := r.Perm(n)
		if len(idx) > 24 {
			idx = idx[:24]
		}
		for _, j := range idx {
			old := data[i][j]
			data[i][j] = old + eps
			up := run()
			data[i][j] = old - eps
			down := run()
			data[i][j] = old
			num := (up - down) / (2 * eps)
			got := float64(analytic[i][j])
			if math.Abs(num-got) > 2e-2*max(1, math.Abs(num)) {
				t.Errorf("input %d[%d]: analytic gradient %.5g, numerical %.5g", i, j, got, num)
			}
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

func TestLayerGradients(t *testing.T) {
	sh := func(s ...int) tensor.Shape { return tensor.Shape(s) }
	type tc struct {
		name   string
		l      layer
		inputs []gradInput
	}
	unit := func(s tensor.Shape) gradInput { return gradInput{shape: s, scale: 1} }
	var cases []tc
	for _, c := range []struct{ n, h, w, cin, cout, k, s int }{
		{2, 5, 5, 3, 4, 3, 2}, {2, 4, 4, 2, 3, 3, 1}, {1, 6, 5, 2, 2, 5, 2}, {3, 4, 4, 5, 6, 1, 1}, {2, 4, 4, 2, 3, 1, 2},
		{16, 8, 8, 24, 40, 1, 1}, {8, 9, 9, 8, 16, 3, 2}, // big enough for the threaded paths
	} {
		cases = append(cases, tc{fmt.Sprintf("conv%+v", c), newConv(c.n, c.h, c.w, c.cin, c.cout, c.k, c.s, false),
			[]gradInput{unit(sh(c.n*c.h*c.w, c.cin)), unit(sh(c.k*c.k*c.cin, c.cout))}})
	}
	cases = append(cases, tc{"dense+bias", newConv(5, 1, 1, 7, 3, 1, 1, true),
		[]gradInput{unit(sh(5, 7)), unit(sh(7, 3)), unit(sh(3))}})
	for _, c := range []struct{ n, h, w, ch, k, s int }{
		{2, 5, 5, 3, 3, 1}, {2, 5, 5, 3, 3, 2}, {1, 6, 6, 4, 5, 2}, {2, 4, 3, 2, 5, 1}, {1, 2, 2, 3, 3, 2}, {16, 8, 8, 24, 5, 2},
	} {
		cases = append(cases, tc{fmt.Sprintf("dw%+v", c), newDW(c.n, c.h, c.w, c.ch, c.k, c.s),
			[]gradInput{unit(sh(c.n*c.h*c.w, c.ch)), unit(sh(c.k*c.k, c.ch))}})
	}
	cases = append(cases, tc{"bn big", newBN(1024, 24, actSwish),
		[]gradInput{{shape: sh(1024, 24), scale: 2, shift: 0.5}, {shape: sh(24), scale: 0.3, shift: 1}, unit(sh(24))}})
	for _, act := range []int{actNone, actSwish, actReLU} {
		cases = append(cases, tc{fmt.Sprintf("bn act%d", act), newBN(12, 3, act),
			[]gradInput{{shape: sh(12, 3), scale: 2, shift: 0.5}, {shape: sh(3), scale: 0.3, shift: 1}, unit(sh(3))}})
	}
	cases = append(cases,
		tc{"gap", &gapLayer{n: 2, hw: 6, c: 3}, []gradInput{unit(sh(12, 3))}},
		tc{"swish", &actLayer{shape: sh(4, 3), act: actSwish}, []gradInput{{shape: sh(4, 3), scale: 3}}},
		tc{"sigmoid", &actLayer{shape: sh(4, 3), act: actSigmoid}, []gradInput{{shape: sh(4, 3), scale: 3}}},
		tc{"scale", &scaleLayer{n: 2, hw: 4, c: 3}, []gradInput{unit(sh(8, 3)), unit(sh(2, 3))}},
		tc{"resid", &residLayer{n: 4, hw: 2, c: 3, survival: 0.6}, []gradInput{unit(sh(8, 3)), unit(sh(8, 3))}},
		tc{"dropout", &dropoutLayer{shape: sh(4, 5), rate: 0.3}, []gradInput{unit(sh(4, 5))}},
	)
	for _, c := range cases {
		for _, threads := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/threads%d", c.name, threads), func(t *testing.T) {
				checkGrad(t, threads, c.inputs, single(c.l))
			})
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
