package trainer

import (
	"fmt"
	"hash"
	"hash/fnv"
	"time"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// A layer is the float32 computation behind one custom gorgonia op. Shapes
// are fixed when the layer is built (the batch size is fixed per graph), so
// its buffers are allocated once and reused on every step.
//
// Activations are row-major matrices (rows, channels) in NHWC order: a
// feature map of N images of H x W pixels and C channels is an (N*H*W, C)
// matrix. Spatial layers carry N, H and W themselves.
type layer interface {
	name() string
	outShape() tensor.Shape
	// forward computes out from in.
	forward(rt *runtime, in [][]float32, out []float32)
	// diff says which inputs have a gradient.
	diff() []bool
	// backward writes the gradient of every input i with din[i] != nil,
	// given the forward inputs, the forward output and dy, the gradient of
	// the cost with respect to out. It overwrites din (it does not add).
	backward(rt *runtime, in [][]float32, out, dy []float32, din [][]float32)
}

// f32s returns the float32 slice behind a gorgonia value.
func f32s(v G.Value) []float32 {
	switch v := v.(type) {
	case *G.F32:
		return []float32{float32(*v)}
	case tensor.Tensor:
		if d, ok := v.Data().([]float32); ok {
			return d
		}
		if d, ok := v.Data().(float32); ok {
			return []float32{d}
		}
	}
	panic(fmt.Sprintf("trainer: value %T is not float32", v))
}

func nodeType(s tensor.Shape) hm.Type {
	if s.IsScalar() {
		return tensor.Float32
	}
	return G.TensorType{Dims: s.Dims(), Of: tensor.Float32}
}

// fwdOp runs a layer's forward pass as a gorgonia op. Each instance has a
// unique id so gorgonia's hash-consing never merges two layers.
type fwdOp struct {
	rt    *runtime
	l     layer
	id    int
	in    []hm.Type
	out   *tensor.Dense // reused output (nil for a scalar output)
	bufs  [][]float32   // private input-gradient buffers
	ins   [][]float32
	param []bool   // inputs that are parameters: their gradients stay private
	kind  profKind // what the profile charges its time to
}

func newFwdOp(rt *runtime, l layer, children []*G.Node) *fwdOp {
	op := &fwdOp{rt: rt, l: l, id: rt.id()}
	for _, c := range children {
		op.in = append(op.in, c.Type())
	}
	if s := l.outShape(); !s.IsScalar() {
		op.out = tensor.New(tensor.WithShape(s.Clone()...), tensor.Of(tensor.Float32))
	}
	op.bufs = make([][]float32, len(children))
	op.param = make([]bool, len(children))
	op.ins = make([][]float32, len(children))
	return op
}

func (op *fwdOp) Arity() int { return len(op.in) }
func (op *fwdOp) Type() hm.Type {
	ts := append(append([]hm.Type(nil), op.in...), nodeType(op.l.outShape()))
	return hm.NewFnType(ts...)
}
func (op *fwdOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return op.l.outShape().Clone(), nil }
func (op *fwdOp) ReturnsPtr() bool                               { return false }
func (op *fwdOp) CallsExtern() bool                              { return false }
func (op *fwdOp) OverwritesInput() int                           { return -1 }
func (op *fwdOp) WriteHash(h hash.Hash)                          { fmt.Fprintf(h, "%s#%d", op.l.name(), op.id) }
func (op *fwdOp) Hashcode() uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}
func (op *fwdOp) String() string { return fmt.Sprintf("%s#%d", op.l.name(), op.id) }

func (op *fwdOp) Do(vals ...G.Value) (G.Value, error) {
	if p := op.rt.prof; p != nil && !isSelfTimed(op.l) {
		t0 := time.Now()
		defer func() {
			f, b := work(op.l, false)
			p.add(op.kind, &t0, f, b)
		}()
	}
	if len(vals) != len(op.in) {
		return nil, fmt.Errorf("%v: got %d inputs, want %d", op, len(vals), len(op.in))
	}
	for i, v := range vals {
		op.ins[i] = f32s(v)
	}
	if op.out == nil {
		var r [1]float32
		op.l.forward(op.rt, op.ins, r[:])
		return G.NewF32(r[0]), nil
	}
	op.l.forward(op.rt, op.ins, op.out.Data().([]float32))
	return op.out, nil
}

func (op *fwdOp) DiffWRT(n int) []bool { return op.l.diff() }

// SymDiff returns a gradient node per differentiable input. The first one
// (the main node) takes all of the layer's inputs, its output and the
// output's gradient, and computes every input gradient at once; the others
// take only the main node, which makes them run after it, and hand out
// what it computed.
func (op *fwdOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	d := op.l.diff()
	ret := make(G.Nodes, len(inputs))
	children := append(append(G.Nodes(nil), inputs...), output, grad)
	var main *G.Node
	for i, ok := range d {
		if !ok {
			continue
		}
		b := &bwdOp{f: op, wrt: i, id: op.rt.id(), shape: inputs[i].Shape().Clone(), main: main == nil}
		if op.bufs[i] == nil {
			op.bufs[i] = make([]float32, b.shape.TotalSize())
		}
		if op.param[i] {
			b.out = tensor.New(tensor.WithShape(b.shape.Clone()...), tensor.Of(tensor.Float32))
		} else {
			// The gradient of an activation is computed straight into
			// the node's value.
			b.out = tensor.New(tensor.WithShape(b.shape.Clone()...), tensor.WithBacking(op.bufs[i]))
		}
		b.outType = inputs[i].Type()
		deps := G.Nodes{main}
		if b.main {
			deps = children
		}
		for _, c := range deps {
			b.in = append(b.in, c.Type())
		}
		n, err := G.ApplyOp(b, deps...)
		if err != nil {
			return nil, fmt.Errorf("gradient of %v input %d: %w", op, i, err)
		}
		if b.main {
			main = n
		}
		ret[i] = n
	}
	return ret, nil
}

// bwdOp returns the gradient of one input of a layer. The layer's main
// gradient node computes all of the layer's input gradients into the
// layer's buffers; an activation's gradient node returns its buffer
// itself, a parameter's returns a copy. Parameter gradients are kept in the
// private buffers, which the optimizer reads: gorgonia may reuse a node's
// returned tensor as scratch once the node is dead, so nothing is read back
// from a returned tensor outside the graph.
type bwdOp struct {
	f       *fwdOp
	wrt     int
	id      int
	main    bool // inputs: the layer's inputs, output and output gradient; else the main node
	in      []hm.Type
	outType hm.Type
	shape   tensor.Shape
	out     *tensor.Dense
	ins     [][]float32
}

func (op *bwdOp) Arity() int { return len(op.in) }
func (op *bwdOp) Type() hm.Type {
	ts := append(append([]hm.Type(nil), op.in...), op.outType)
	return hm.NewFnType(ts...)
}
func (op *bwdOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return op.shape.Clone(), nil }
func (op *bwdOp) ReturnsPtr() bool                               { return false }
func (op *bwdOp) CallsExtern() bool                              { return false }
func (op *bwdOp) OverwritesInput() int                           { return -1 }
func (op *bwdOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "d%s#%d/%d#%d", op.f.l.name(), op.f.id, op.wrt, op.id)
}
func (op *bwdOp) Hashcode() uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}
func (op *bwdOp) String() string { return fmt.Sprintf("d%v/d%d", op.f, op.wrt) }

func (op *bwdOp) Do(vals ...G.Value) (G.Value, error) {
	f := op.f
	if !f.rt.training {
		return op.out, nil // evaluation runs the forward pass only
	}
	if op.main {
		var t0 time.Time
		p := f.rt.prof
		if p != nil && !isSelfTimed(f.l) {
			t0 = time.Now()
		}
		n := len(f.in)
		if op.ins == nil {
			op.ins = make([][]float32, n)
		}
		for i := 0; i < n; i++ {
			op.ins[i] = f32s(vals[i])
		}
		f.l.backward(f.rt, op.ins, f32s(vals[n]), f32s(vals[n+1]), f.bufs)
		if p != nil && !isSelfTimed(f.l) {
			fl, b := work(f.l, true)
			p.add(f.kind, &t0, fl, b)
		}
	}
	if f.param[op.wrt] {
		copy(op.out.Data().([]float32), f.bufs[op.wrt])
	}
	return op.out, nil
}

// apply adds layer l to the graph with the given inputs.
func apply(rt *runtime, l layer, children ...*G.Node) (*G.Node, *fwdOp, error) {
	op := newFwdOp(rt, l, children)
	n, err := G.ApplyOp(op, children...)
	if err != nil {
		return nil, nil, fmt.Errorf("add %s: %w", l.name(), err)
	}
	return n, op, nil
}
